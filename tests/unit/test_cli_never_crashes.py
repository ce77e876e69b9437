"""Every command ends in a message and an exit code, never a traceback: the
human and the --json output of `verify` on each kind of input it takes
without a model load (an ONNX folder, stored or not; a damaged file), and a
bug anywhere is one line on the terminal with the traceback in the log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgeoss.cli import app
from edgeoss.paths import paths
from edgeoss.weights import importer
from onnx_layout import onnx_layout_double

runner = CliRunner()


@pytest.mark.parametrize("as_json", [False, True])
def test_verify_an_onnx_folder_prints_its_report(tmp_path: Path, as_json: bool) -> None:
    """Found from outside: the human renderer assumed a GGUF report (KeyError: 'tensors_by_type')."""
    folder = onnx_layout_double(tmp_path / "cuda")
    result = runner.invoke(app, ["verify", str(folder), *(["--json"] if as_json else [])])
    assert result.exit_code == 0, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    if as_json:
        assert json.loads(result.stdout)["format"] == "onnx-cuda"
    else:
        assert "4 files" in result.stdout and "checks passed" in result.stdout and "Traceback" not in result.output


@pytest.mark.parametrize("as_json", [False, True])
def test_verify_a_stored_onnx_model_by_name(tmp_path: Path, as_json: bool) -> None:
    importer.import_path(onnx_layout_double(tmp_path / "cpu"), name="o20")
    result = runner.invoke(app, ["verify", "o20", *(["--json"] if as_json else [])])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("as_json", [False, True])
def test_verify_a_damaged_file_names_its_class(tmp_path: Path, as_json: bool) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\xff" * 60)
    result = runner.invoke(app, ["verify", str(bad), *(["--json"] if as_json else [])])
    assert result.exit_code in (11, 12), result.output
    assert "Traceback" not in result.output


def test_a_bug_is_one_line_and_the_traceback_goes_to_the_log(monkeypatch: pytest.MonkeyPatch) -> None:
    from edgeoss import spec

    def broken(name: str) -> dict[str, int | str]:
        raise RuntimeError("a bug planted by the test")

    monkeypatch.setattr(spec, "facts", broken)
    result = runner.invoke(app, ["spec", "20b"])
    assert result.exit_code == 1
    assert not isinstance(result.exception, RuntimeError), "the exception escaped the command"
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines and lines[0].startswith("error: unexpected RuntimeError: a bug planted by the test")
    assert str(paths().log_file) in result.stderr.replace("\n", "")
    assert "Traceback" not in result.output
    assert "RuntimeError: a bug planted by the test" in paths().log_file.read_text(encoding="utf-8")
