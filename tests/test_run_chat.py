"""`edgeoss run` and `edgeoss chat` end to end on the demo model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgeoss import harmony, models
from edgeoss.cli import app
from edgeoss.store import Store

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


def test_run_without_a_model_says_what_to_do() -> None:
    result = runner.invoke(app, ["run", "hello"])
    assert result.exit_code == 20 and "no model is installed" in result.output and "demo" in result.output


def test_run_bad_arguments() -> None:
    assert runner.invoke(app, ["run", "demo", "hi", "--effort", "extreme"]).exit_code == 2
    assert runner.invoke(app, ["run", "a", "b", "c"]).exit_code == 2
    missing = runner.invoke(app, ["run", "nothere", "hi"])
    assert missing.exit_code == 20 and "no model named 'nothere'" in missing.output


def test_run_a_gguf_path(tiny_gguf: Path) -> None:
    result = runner.invoke(app, ["run", str(tiny_gguf), "hi", "--max-tokens", "3", "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["model"] == "tiny.gguf"


def test_chat_commands(edgeoss_home: Path) -> None:
    script = (
        "/effort high\nHello \\\nthere\n/effort silly\n/reasoning show\n/reasoning sideways\n/show\n/clear\n/exit\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "edgeoss", "chat", "demo", "--max-tokens", "5"],
        input=script,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "EDGEOSS_HOME": str(edgeoss_home)},
    )
    assert result.returncode == 0, result.stderr
    assert "effort high" in result.stderr and "usage: /effort" in result.stderr and "history cleared" in result.stderr
    assert "reasoning show" in result.stderr and "usage: /reasoning" in result.stderr
    assert result.stdout.count("you> ") == 8


def test_header_that_never_completes_becomes_answer_text() -> None:
    parser = harmony.StreamParser()
    for token in harmony.encoding().encode(" plain words", allowed_special="all"):
        parser.feed(token)
    parser.finish("length")
    assert parser.result.content == " plain words" and parser.result.malformed == 1


def test_endless_header_streams_as_text_once_no_header_could_be_that_long() -> None:
    parser = harmony.StreamParser()
    words = harmony.encoding().encode(" word" * 100)
    early = [e for t in words[:80] for e in parser.feed(t)]
    assert [e.kind for e in early if e.kind != "content"] == [] and early  # text before the end
    for token in words[80:]:
        parser.feed(token)
    parser.finish("length")
    assert parser.result.content == " word" * 100 and parser.result.malformed == 1
