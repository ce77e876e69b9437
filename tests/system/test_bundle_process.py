"""A bundle installed on another machine: its install script, run as a process."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bundle_doubles import stand_in_binary, store_a_copy
from edgeoss.cli import app

runner = CliRunner()


@pytest.fixture
def stored(tiny_gguf: Path, tmp_path: Path) -> str:
    return store_a_copy(tiny_gguf, tmp_path)


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
