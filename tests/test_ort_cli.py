"""onnxruntime-genai through the commands: run/serve --backend ort, choosing
ONNX models, export-onnx and its failures, and the DirectML load check."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import httpx
import pytest
from server_process import free_port, user_env, wait_ready
from test_store import onnx_layout_double
from typer.testing import CliRunner

from edgeoss import export_onnx, importer, models
from edgeoss.cli import app
from edgeoss.onnx_load_check import check
from edgeoss.store import Store

runner = CliRunner()
HELLO = [{"role": "user", "content": "Hi"}]


# --- choosing a model and its backend (no engine needed) ---------------------------------


def test_an_onnx_folder_runs_on_onnxruntime_genai_with_the_provider_it_was_built_for(tmp_path: Path) -> None:
    chosen = models.choose(str(onnx_layout_double(tmp_path / "cuda")))
    assert (chosen.backend, chosen.provider, chosen.name) == ("ort", "cuda", "cuda")
    stored = importer.import_path(onnx_layout_double(tmp_path / "again"), name="o20")
    assert models.choose("o20").backend == "ort" and stored.backend == "ort-genai"


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


def test_a_broken_onnx_folder_is_refused_before_loading(tmp_path: Path) -> None:
    folder = onnx_layout_double(tmp_path / "cuda")
    (folder / "model.onnx.data").unlink()
    result = runner.invoke(app, ["run", str(folder), "hi"])
    assert result.exit_code == 10 and "model.onnx.data is missing" in result.output


# --- the real engine through run and serve ----------------------------------------------


def test_run_backend_ort_on_an_onnx_folder(tiny_onnx: Path) -> None:
    result = runner.invoke(
        app, ["run", "--backend", "ort", str(tiny_onnx), "Say hi", "--max-tokens", "6", "--seed", "1", "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["backend"] == "onnxruntime-genai, cpu" and data["usage"]["completion_tokens"] == 6


def test_serve_backend_ort_answers_chat_completions(tiny_onnx: Path, edgeoss_home: Path) -> None:
    openai = pytest.importorskip("openai")
    importer.import_path(tiny_onnx, name="tiny-onnx")
    port = free_port()
    command = ["serve", "tiny-onnx", "--backend", "ort", "--port", str(port), "--parallel", "4", "--ctx", "2048"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgeoss", *command],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "EDGEOSS_HOME": str(edgeoss_home)},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc, 120)
        health = httpx.get(url + "/health").json()
        assert health["backend"] == "onnxruntime-genai, cpu" and health["parallel"] == 1
        client = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0)
        reply = client.chat.completions.create(model="tiny-onnx", messages=HELLO, max_tokens=5)
        assert reply.usage is not None and reply.usage.completion_tokens == 5
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=30)
    assert "tiny-onnx (onnxruntime-genai)" in stderr
    assert "--parallel 4 becomes 1" in stderr


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


def test_onnxruntime_telemetry_is_off(tmp_path: Path) -> None:
    """Imported plainly, onnxruntime and onnxruntime-genai start Microsoft's
    telemetry client (it leaves a .ses file in the temporary folder)."""
    pytest.importorskip("onnxruntime_genai")
    env = {k: v for k, v in user_env().items() if k != "ORT_DISABLE_TELEMETRY"}
    load = "from edgeoss.engines import ort_binding; ort_binding.load(); ort_binding.load_onnxruntime()"
    for name, code in (("plain", "import onnxruntime_genai, onnxruntime"), ("edgeoss", load)):
        tmp = tmp_path / name
        tmp.mkdir()
        subprocess.run([sys.executable, "-c", code], env={**env, "TMPDIR": str(tmp)}, check=True)
    assert [p.name for p in (tmp_path / "plain").iterdir()] == [".ses"]  # what edgeoss prevents
    assert list((tmp_path / "edgeoss").iterdir()) == []
