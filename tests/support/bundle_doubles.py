"""Test doubles for `edgeoss bundle`: a stand-in for the frozen binary, and a
model in the store to bundle."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from edgeoss.weights import importer


def stand_in_binary(folder: Path) -> Path:
    """Test double for the frozen edgeoss binary: a script that runs this
    checkout's edgeoss with this Python (the real binary is smoke-tested in CI)."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "edgeoss"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m edgeoss "$@"\n')
    script.chmod(0o755)
    return script


def store_a_copy(gguf: Path, tmp_path: Path) -> str:
    """Import a copy of `gguf` as "tiny" and return that name."""
    # A copy: import hard-links on the same disk, and one test damages the stored file.
    copy = tmp_path / "source" / "tiny.gguf"
    copy.parent.mkdir()
    shutil.copyfile(gguf, copy)
    importer.import_path(copy, name="tiny")
    return "tiny"
