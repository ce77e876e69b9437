"""edgeoss: run OpenAI's gpt-oss models on the computer you have."""

# The one place for the version: pyproject.toml reads it from here. A literal, not
# importlib.metadata, which costs every command a thirtieth of a second to start.
__version__ = "0.1.0"
