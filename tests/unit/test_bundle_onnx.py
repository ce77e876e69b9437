"""`edgeoss bundle` of an ONNX model (a test double of its folder) with a onedir
binary, and its install from the bundle (GGUF bundles:
tests/integration/test_bundle.py)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from bundle_doubles import stand_in_binary
from edgeoss.weights import bundle, importer
from edgeoss.weights.store import Store
from onnx_layout import onnx_layout_double


def test_bundle_an_onnx_model_with_a_onedir_binary(tmp_path: Path) -> None:
    importer.import_path(onnx_layout_double(tmp_path / "cuda"), name="onnx20")
    onedir = tmp_path / "dist" / "edgeoss"
    stand_in_binary(onedir)
    (onedir / "_internal").mkdir()
    (onedir / "_internal" / "libpython.so").write_bytes(b"\0" * 64)
    out = bundle.bundle(tmp_path / "b", "onnx20", binary=onedir).folder
    assert (out / "edgeoss" / "_internal" / "libpython.so").is_file() and os.access(
        out / "edgeoss" / "edgeoss", os.X_OK
    )
    shutil.rmtree(Store().folder("onnx20"))
    manifest = importer.import_path(out / "models" / "onnx20")
    assert (
        manifest.name == "onnx20"
        and manifest.format == "onnx-cuda"
        and "manifest.json" not in {f.path for f in manifest.files}
    )
