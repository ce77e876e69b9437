"""`edgeoss pull` against a local imitation of the Hub without a model file: a
failed ONNX pull that resumes, offline mode, an unreachable hub, unknown names
(pulling the tiny GGUF: tests/integration/test_pull.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgeoss import errors
from edgeoss.cli import app
from edgeoss.weights import pull
from fake_hub import FakeHub, patched_hub
from onnx_layout import onnx_layout_double

runner = CliRunner()


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeHub]:
    with patched_hub(monkeypatch, tmp_path / "hf-home") as fake:
        yield fake


def test_completed_files_survive_a_failed_pull(hub: FakeHub, tmp_path: Path) -> None:
    folder = onnx_layout_double(tmp_path / "cpu_and_mobile")
    repo = "onnxruntime/gpt-oss-20b-onnx"
    served = {p.name: hub.add_file(repo, f"cpu_and_mobile/{p.name}", p.read_bytes()) for p in folder.iterdir()}
    served["tokenizer_config.json"].corrupt = True  # the last file fails
    with pytest.raises(errors.ChecksumError):
        pull.pull("20b", "onnx-cpu", progress=False)
    hub.clear_log()
    served["tokenizer_config.json"].corrupt = False
    manifest = pull.pull("20b", "onnx-cpu", progress=False)
    fetched_again = {r.path.rsplit("/", 1)[-1] for r in hub.requests("GET", "/resolve/")}
    assert fetched_again == {"tokenizer_config.json"}
    assert manifest.format == "onnx-cpu" and manifest.backend == "ort-genai" and manifest.entry == "cpu_and_mobile"
    assert len(manifest.files) == len(served)


def test_offline_mode_names_import(hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    result = runner.invoke(app, ["pull", "20b"])
    assert result.exit_code == pull.HubUnreachableError.exit_code
    assert "offline mode is on" in result.output and "edgeoss import" in result.output
    assert hub.log == []


def test_unreachable_hub_names_import(hub: FakeHub) -> None:
    hub.offline = True
    result = runner.invoke(app, ["pull", "20b"])
    assert result.exit_code == pull.HubUnreachableError.exit_code
    assert "cannot be reached" in result.output and "edgeoss import" in result.output


def test_unknown_repo_and_format(hub: FakeHub) -> None:
    result = runner.invoke(app, ["pull", "someone/not-there"])
    assert result.exit_code == pull.HubNotFoundError.exit_code and "not found" in result.output
    result = runner.invoke(app, ["pull", "20b", "--format", "exe"])
    assert result.exit_code == 2 and "unknown format" in result.output


@pytest.mark.parametrize("listed", ["cpu_and_mobile/../../escaped.json", "/etc/escaped.json", "cpu_and_mobile\\x.json"])
def test_a_listing_that_leaves_the_repository_is_refused(hub: FakeHub, tmp_path: Path, listed: str) -> None:
    """A Hub (any HF_ENDPOINT) that lists a path outside the repository gets nothing
    downloaded and nothing written outside the staging folder."""
    folder = onnx_layout_double(tmp_path / "cpu_and_mobile")
    repo = "onnxruntime/gpt-oss-20b-onnx"
    for p in folder.iterdir():
        hub.add_file(repo, f"cpu_and_mobile/{p.name}", p.read_bytes())
    hub.add_file(repo, listed, b"{}")
    with pytest.raises(errors.HubNotFoundError, match="points outside its folder"):
        pull.pull("20b", "onnx-cpu", progress=False)
    assert hub.requests("GET", "/resolve/") == []
    assert not list(tmp_path.rglob("escaped.json"))
