"""The model store and its checks on ONNX folders: verify and import (the same
for GGUF files: tests/integration/test_store.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeoss import errors, spec
from edgeoss.weights import importer
from edgeoss.weights.store import MANIFEST, Store
from edgeoss.weights.verify import verify_path
from onnx_layout import onnx_layout_double


def test_onnx_folder_verify_and_import(tmp_path: Path) -> None:
    folder = onnx_layout_double(tmp_path / "cuda")
    report = verify_path(folder, deep=True)
    assert report.ok, report.summary()
    assert report.format == "onnx-cuda" and report.variant == "gpt-oss-20b"
    assert set(report.sha256) == {
        "genai_config.json",
        "model.onnx",
        "model.onnx.data",
        "tokenizer.json",
        "tokenizer_config.json",
    }
    manifest = importer.import_path(folder, name="onnx20b")
    assert manifest.backend == "ort-genai" and manifest.entry == "."
    assert (Store().folder("onnx20b") / MANIFEST).is_file()


@pytest.mark.parametrize(
    ("change", "error", "fragment"),
    [
        (lambda f: onnx_layout_double(f, eos=[spec.ENDOFTEXT]), errors.VocabularyError, "lacks [200002, 200012]"),
        (lambda f: onnx_layout_double(f, model_type="phi3"), errors.SpecMismatchError, "not gpt-oss"),
        (lambda f: (onnx_layout_double(f) / "model.onnx.data").unlink(), errors.FileAccessError, "missing"),
        (lambda f: (onnx_layout_double(f) / "model.onnx").write_bytes(b""), errors.FileAccessError, "empty"),
        (
            lambda f: (onnx_layout_double(f) / "genai_config.json").write_text("{not json"),
            errors.StructureError,
            "not valid JSON",
        ),
    ],
)
def test_onnx_folder_problems(tmp_path: Path, change: object, error: type[errors.VerifyError], fragment: str) -> None:
    folder = tmp_path / "onnx"
    change(folder)  # type: ignore[operator]
    report = verify_path(folder)
    assert not report.ok and report.exit_code == error.exit_code
    assert fragment in report.summary()
