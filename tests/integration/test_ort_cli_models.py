"""onnxruntime-genai through the commands with real models, in process:
choosing between ONNX and the tiny GGUF, run --backend ort, export-onnx's int4
export, and the DirectML load check (without a model: tests/unit/test_ort_cli.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import ClassVar

import pytest
from typer.testing import CliRunner

from edgeoss.cli import app
from edgeoss.runtime import choose as models
from edgeoss.weights import importer
from edgeoss.weights.onnx import export as export_onnx
from edgeoss.weights.onnx.load_check import check
from edgeoss.weights.store import Store
from onnx_layout import onnx_layout_double

runner = CliRunner()


# --- choosing a model and its backend (no engine needed) ---------------------------------


def test_a_backend_that_cannot_run_the_model_is_refused(tmp_path: Path, tiny_gguf: Path) -> None:
    folder = onnx_layout_double(tmp_path / "cuda")
    with pytest.raises(models.NoModelError, match=r"--backend llama\.cpp cannot run it"):
        models.choose(str(folder), backend="llama.cpp")
    with pytest.raises(models.NoModelError, match="--backend ort cannot run it"):
        models.choose(str(tiny_gguf), backend="ort")
    with pytest.raises(models.NoModelError, match="--backend ort cannot run it"):
        models.choose(models.DEMO, backend="ort")
    result = runner.invoke(app, ["run", "--backend", "vulkan", "demo", "hi"])
    assert result.exit_code == 2 and "llama.cpp, ort" in result.output


def test_the_best_installed_model_follows_the_plan_s_format(tmp_path: Path, tiny_gguf: Path) -> None:
    importer.import_path(onnx_layout_double(tmp_path / "cuda"), name="onnx20")
    importer.import_path(tiny_gguf, name="gguf-tiny")

    class OrtPlan:
        fits, variant, backend, context_length = True, "gpt-oss-20b", "ort-genai-cuda", 4096
        artifact: ClassVar[dict[str, str]] = {"format": "onnx-cuda"}

    assert models.choose(None, plan=OrtPlan()).name == "onnx20"
    assert models.choose(None, plan=OrtPlan()).settings.context_length == 4096
    assert models.choose(None, backend="llama.cpp").name == "gguf-tiny"
    with pytest.raises(models.NoModelError, match="no ONNX model"):
        models.choose(None, store=Store(tmp_path / "empty"), backend="ort")


# --- the real engine through run ----------------------------------------------------------


def test_run_backend_ort_on_an_onnx_folder(tiny_onnx: Path) -> None:
    result = runner.invoke(
        app, ["run", "--backend", "ort", str(tiny_onnx), "Say hi", "--max-tokens", "6", "--seed", "1", "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["backend"] == "onnxruntime-genai, cpu" and data["usage"]["completion_tokens"] == 6


# --- export-onnx ----------------------------------------------------------------------------


def test_export_onnx_int4_for_the_cpu_verifies_and_runs(tiny_checkpoint: Path, tmp_path: Path) -> None:
    if export_onnx.missing_dependencies():
        pytest.skip("the exporter's dependencies are not installed")
    out = tmp_path / "int4"
    result = runner.invoke(app, ["export-onnx", str(tiny_checkpoint), "-o", str(out), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] and report["format"] == "onnx-cpu" and report["load_check"] is None
    assert check(out, "cpu").ok


# --- DirectML: planned only once a model has loaded on it here ----------------------------


def test_the_load_check_answers_for_each_provider(tiny_onnx: Path) -> None:
    cpu = check(tiny_onnx, "cpu")
    assert cpu.ok and "loaded and ran" in cpu.detail
    dml = check(tiny_onnx, "dml")  # this onnxruntime-genai has no DirectML
    assert not dml.ok and "dml" in dml.detail


def test_importing_a_directml_folder_records_whether_it_loads(tiny_onnx: Path, tmp_path: Path) -> None:
    folder = tmp_path / "dml"
    shutil.copytree(tiny_onnx, folder)
    config = json.loads((folder / "genai_config.json").read_text())
    config["model"]["decoder"]["session_options"]["provider_options"] = [{"dml": {}}]
    (folder / "genai_config.json").write_text(json.dumps(config))
    manifest = importer.import_path(folder, name="dml-export")
    assert manifest.format == "onnx-dml"
    assert manifest.source["load_check"]["ok"] is False and manifest.source["load_check"]["provider"] == "dml"
    assert Store().verified_loads() == frozenset()
