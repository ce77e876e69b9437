"""edgeoss: run OpenAI's gpt-oss models on the computer you have."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("edgeoss")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"
