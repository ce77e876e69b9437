"""The data files edgeoss ships, checked before use.

The o200k vocabulary and the chat template are package data so that an
offline laptop has them; each is checked against its published sha256 the
first time it is read in a process.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

from edgeoss import spec
from edgeoss.errors import DataIntegrityError

VOCAB_FILE = "o200k_base.tiktoken"
CHAT_TEMPLATE_FILE = "gpt-oss.chat_template.jinja"


def data_dir() -> Path:
    """The package's data folder on disk (also inside a PyInstaller bundle)."""
    return Path(__file__).resolve().parent / "data"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _checked(name: str, expected: str) -> Path:
    path = data_dir() / name
    reinstall = "reinstall edgeoss (pip install --force-reinstall edgeoss)"
    if not path.is_file():
        raise DataIntegrityError(f"packaged file {name} is missing from {path.parent}", hint=reinstall)
    actual = sha256_file(path)
    if actual != expected:
        raise DataIntegrityError(
            f"packaged file {path} is damaged: sha256 {actual}, expected {expected}", hint=reinstall
        )
    return path


@functools.lru_cache(maxsize=1)
def vocab_path() -> Path:
    """o200k_base.tiktoken, verified."""
    return _checked(VOCAB_FILE, spec.O200K_SHA256)


@functools.lru_cache(maxsize=1)
def chat_template() -> str:
    """OpenAI's gpt-oss chat template (Jinja), verified."""
    return _checked(CHAT_TEMPLATE_FILE, spec.CHAT_TEMPLATE_SHA256).read_text(encoding="utf-8")
