"""`edgeoss bundle` on the tiny GGUF: a folder an offline machine installs from,
and its verification on arrival (an ONNX model with a onedir binary:
tests/unit/test_bundle_onnx.py; the install script run as a process:
tests/system/test_bundle_process.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from bundle_doubles import store_a_copy
from edgeoss import errors
from edgeoss.cli import app
from edgeoss.weights import bundle, importer
from edgeoss.weights.store import Store

runner = CliRunner()


@pytest.fixture
def stored(tiny_gguf: Path, tmp_path: Path) -> str:
    return store_a_copy(tiny_gguf, tmp_path)


def test_a_damaged_copy_is_refused_on_arrival(stored: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = bundle.bundle(tmp_path / "b", stored).folder
    gguf = out / "models" / "tiny" / "tiny.gguf"
    data = bytearray(gguf.read_bytes())
    data[-100] ^= 0xFF  # one flipped byte in the tensor data: the GGUF still parses
    gguf.write_bytes(bytes(data))
    monkeypatch.setenv("EDGEOSS_HOME", str(tmp_path / "other"))
    with pytest.raises(errors.ChecksumError, match="differ from the bundled manifest"):
        importer.import_path(out / "models" / "tiny")
    assert Store().list() == []


def test_bundle_refuses_a_store_that_changed(stored: str, tmp_path: Path) -> None:
    path = Store().entry_path(Store().get(stored))
    with path.open("r+b") as fh:
        fh.seek(-10, 2)
        fh.write(b"XXXXXXXXXX")
    with pytest.raises(errors.ChecksumError, match="no longer matches its manifest"):
        bundle.bundle(tmp_path / "b", stored)
    assert not (tmp_path / "b").exists() and [p.name for p in tmp_path.iterdir()] == ["source"]


def test_bundle_takes_a_stored_model_not_a_path(tiny_gguf: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["bundle", str(tmp_path / "b"), str(tiny_gguf)])
    assert result.exit_code == 2 and "edgeoss import" in result.output
