"""`edgeoss run` end to end on the demo model and on a GGUF path, in process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgeoss.cli import app
from edgeoss.runtime import choose as models
from edgeoss.weights.store import Store

pytest.importorskip("llama_cpp")
runner = CliRunner()


def test_run_demo_json() -> None:
    result = runner.invoke(app, ["run", "demo", "Say hi", "--max-tokens", "8", "--seed", "1", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["demo"] is True and data["model"] == "demo"
    assert data["usage"]["completion_tokens"] == 8 and data["finish_reason"] == "length"
    assert data["timings"]["tokens_per_s"] > 0
    # A random model never completes a header: its text is the answer, counted as malformed.
    assert data["content"] and data["malformed_tokens"] >= 1 and data["reasoning"] == ""
    assert models.DEMO_LABEL in result.stderr
    assert Store().get("demo").source["kind"] == "demo"


def test_run_a_gguf_path(tiny_gguf: Path) -> None:
    result = runner.invoke(app, ["run", str(tiny_gguf), "hi", "--max-tokens", "3", "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["model"] == "tiny.gguf"
