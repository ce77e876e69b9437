"""`edgeoss bundle`: a folder an offline machine installs from, and its
verification on arrival."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgeoss import bundle, errors, importer
from edgeoss.cli import app
from edgeoss.store import Store

runner = CliRunner()


def stand_in_binary(folder: Path) -> Path:
    """Test double for the frozen edgeoss binary: a script that runs this
    checkout's edgeoss with this Python (the real binary is smoke-tested in CI)."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "edgeoss"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m edgeoss "$@"\n')
    script.chmod(0o755)
    return script


@pytest.fixture
def stored(tiny_gguf: Path, tmp_path: Path) -> str:
    # A copy: import hard-links on the same disk, and one test damages the stored file.
    copy = tmp_path / "source" / "tiny.gguf"
    copy.parent.mkdir()
    shutil.copyfile(tiny_gguf, copy)
    importer.import_path(copy, name="tiny")
    return "tiny"


def test_bundle_then_install_on_another_machine(stored: str, tmp_path: Path) -> None:
    out = tmp_path / "usb" / "edgeoss-bundle"
    result = runner.invoke(app, ["bundle", str(out), stored, "--binary", str(stand_in_binary(tmp_path / "bin"))])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == [
        "README.txt",
        "SHA256SUMS",
        "edgeoss",
        "install.cmd",
        "install.sh",
        "models",
    ]
    assert os.access(out / "edgeoss", os.X_OK)
    check = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=out, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "models/tiny/tiny.gguf: OK" in check.stdout
    # The other machine: an empty home and store.
    home, store_home = tmp_path / "home", tmp_path / "other-edgeoss"
    env = {**os.environ, "HOME": str(home), "EDGEOSS_HOME": str(store_home)}
    done = subprocess.run(["sh", str(out / "install.sh")], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (home / ".local" / "bin" / "edgeoss").is_file()
    manifest = json.loads((store_home / "data" / "models" / "tiny" / "manifest.json").read_text())
    assert manifest["source"]["kind"] == "bundle" and manifest["format"] == "gguf"


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


def test_bundle_an_onnx_model_with_a_onedir_binary(tmp_path: Path) -> None:
    from test_store import onnx_layout_double

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


def test_bundle_takes_a_stored_model_not_a_path(tiny_gguf: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["bundle", str(tmp_path / "b"), str(tiny_gguf)])
    assert result.exit_code == 2 and "edgeoss import" in result.output
