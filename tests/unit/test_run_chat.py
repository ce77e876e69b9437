"""`edgeoss run` without a model to load: what it says and refuses, and the
parser on a random model's text (the demo model itself:
tests/integration/test_run_chat_engine.py; `edgeoss chat` as a process:
tests/system/test_run_chat_process.py)."""

from __future__ import annotations

from typer.testing import CliRunner

from edgeoss import harmony
from edgeoss.cli import app

runner = CliRunner()


def test_run_without_a_model_says_what_to_do() -> None:
    result = runner.invoke(app, ["run", "hello"])
    assert result.exit_code == 20 and "no model is installed" in result.output and "demo" in result.output


def test_run_bad_arguments() -> None:
    assert runner.invoke(app, ["run", "demo", "hi", "--effort", "extreme"]).exit_code == 2
    assert runner.invoke(app, ["run", "a", "b", "c"]).exit_code == 2
    missing = runner.invoke(app, ["run", "nothere", "hi"])
    assert missing.exit_code == 20 and "no model named 'nothere'" in missing.output


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
