"""`edgeoss verify`: one entry point for every model format edgeoss runs.

A path to a .gguf file (or the first shard of a split GGUF) is checked by
edgeoss.gguf.verify; a folder with genai_config.json by edgeoss.onnx_folder.
"""

from __future__ import annotations

from pathlib import Path

from edgeoss import onnx_folder
from edgeoss.errors import FileAccessError
from edgeoss.gguf import verify as gguf_verify
from edgeoss.report import Report


def verify_path(path: Path, *, deep: bool = False, sha256: str | None = None) -> Report:
    if path.is_dir():
        if (path / onnx_folder.CONFIG_FILE).is_file():
            return onnx_folder.verify(path, deep=deep or sha256 is not None)
        report = Report(path=str(path))
        report.add("read", False, f"{path} is a folder without {onnx_folder.CONFIG_FILE}", FileAccessError)
        return report
    return gguf_verify.verify(path, deep=deep, sha256=sha256)
