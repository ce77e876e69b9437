"""onnxruntime-genai through the commands without a model to run: choosing ONNX
models, export-onnx's failures, telemetry (beside a GGUF, and a real ONNX model
through run, export-onnx and the DirectML load check:
tests/integration/test_ort_cli_models.py; serve --backend ort as a process:
tests/system/test_ort_cli_process.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgeoss.cli import app
from edgeoss.runtime import choose as models
from edgeoss.weights import importer
from edgeoss.weights.onnx import export as export_onnx
from onnx_layout import onnx_layout_double
from server_process import user_env

runner = CliRunner()


# --- choosing a model and its backend (no engine needed) ---------------------------------


def test_an_onnx_folder_runs_on_onnxruntime_genai_with_the_provider_it_was_built_for(tmp_path: Path) -> None:
    chosen = models.choose(str(onnx_layout_double(tmp_path / "cuda")))
    assert (chosen.engine.option, chosen.settings.device, chosen.name) == ("ort", "cuda", "cuda")
    stored = importer.import_path(onnx_layout_double(tmp_path / "again"), name="o20")
    assert models.choose("o20").engine.option == "ort" and stored.backend == "ort-genai"


def test_a_broken_onnx_folder_is_refused_before_loading(tmp_path: Path) -> None:
    folder = onnx_layout_double(tmp_path / "cuda")
    (folder / "model.onnx.data").unlink()
    result = runner.invoke(app, ["run", str(folder), "hi"])
    assert result.exit_code == 10 and "model.onnx.data is missing" in result.output


# --- export-onnx ----------------------------------------------------------------------------


def test_export_refuses_a_folder_that_is_not_a_checkpoint(tmp_path: Path) -> None:
    result = runner.invoke(app, ["export-onnx", str(tmp_path), "-o", str(tmp_path / "out")])
    assert result.exit_code == 19 and not (tmp_path / "out").exists()
    bad = runner.invoke(app, ["export-onnx", str(tmp_path), "-o", str(tmp_path / "out"), "--ep", "tpu"])
    assert bad.exit_code == 2 and "cpu, cuda, webgpu, dml" in bad.output


def test_export_says_what_to_install(tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(export_onnx, "missing_dependencies", lambda: ["torch", "onnx_ir"])
    result = runner.invoke(app, ["export-onnx", str(tiny_checkpoint), "-o", str(tmp_path / "out")])
    assert result.exit_code == 31 and "torch, onnx_ir" in result.output and "edgeoss[export]" in result.output


def test_a_failing_builder_leaves_nothing_but_its_log(
    tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if export_onnx.missing_dependencies():
        pytest.skip("the exporter's dependencies are not installed")

    def failing_builder(src: Path, out: Path, ep: str, precision: str, cache: Path) -> list[str]:
        """Test double for the builder process: writes a partial file, then fails."""
        script = f"open({str(out / 'model.onnx')!r}, 'w').write('partial'); print('builder: out of memory'); exit(3)"
        return [sys.executable, "-c", f"import os; os.makedirs({str(out)!r}, exist_ok=True); {script}"]

    monkeypatch.setattr(export_onnx, "builder_command", failing_builder)
    out = tmp_path / "exported"
    with pytest.raises(export_onnx.ExportError, match=r"exit 3[\s\S]*out of memory"):
        export_onnx.export(tiny_checkpoint, out)
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["exported.export.log"]
    assert "out of memory" in (tmp_path / "exported.export.log").read_text()


# --- telemetry --------------------------------------------------------------------------------


def test_onnxruntime_telemetry_is_off(tmp_path: Path) -> None:
    """Imported plainly, onnxruntime and onnxruntime-genai start Microsoft's
    telemetry client (it leaves a .ses file in the temporary folder)."""
    pytest.importorskip("onnxruntime_genai")
    env = {k: v for k, v in user_env().items() if k != "ORT_DISABLE_TELEMETRY"}
    load = "from edgeoss.engines.ortgenai import binding; binding.load(); binding.load_onnxruntime()"
    for name, code in (("plain", "import onnxruntime_genai, onnxruntime"), ("edgeoss", load)):
        tmp = tmp_path / name
        tmp.mkdir()
        subprocess.run([sys.executable, "-c", code], env={**env, "TMPDIR": str(tmp)}, check=True)
    assert [p.name for p in (tmp_path / "plain").iterdir()] == [".ses"]  # what edgeoss prevents
    assert list((tmp_path / "edgeoss").iterdir()) == []
