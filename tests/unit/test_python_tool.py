"""The python tool without a sandbox says why and never runs the code; its
results read like a notebook cell; sessions expire and are bounded; `edgeoss
tool python` reads its code safely. (The sandbox itself: tests/system/test_python_sandbox.py.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgeoss import errors
from edgeoss.cli import app
from edgeoss.planning import doctor
from edgeoss.tools import python_tool, sandbox

runner = CliRunner()


@pytest.fixture
def no_bubblewrap(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    sandbox.status.cache_clear()
    monkeypatch.setattr(sandbox, "bubblewrap", lambda: None)
    yield
    sandbox.status.cache_clear()


def test_without_bubblewrap_the_tool_is_unavailable_and_says_the_fix(no_bubblewrap: None, tmp_path: Path) -> None:
    status = sandbox.status()
    assert not status.available and "not installed" in status.detail and "apt install bubblewrap" in status.fix
    marker = tmp_path / "ran"
    session = python_tool.PythonSession(scratch_root=tmp_path)
    with pytest.raises(errors.ToolUnavailableError, match="bubblewrap") as caught:
        session.run(f"open({str(marker)!r}, 'w')")
    assert caught.value.hint and "apt install bubblewrap" in caught.value.hint
    assert not marker.exists(), "the code ran without a sandbox"
    result = runner.invoke(app, ["tool", "python", "-c", "print(1)"])
    assert result.exit_code == errors.ToolUnavailableError.exit_code and "unavailable" in result.output


def test_doctor_names_the_sandbox(no_bubblewrap: None) -> None:
    (check,) = [c for c in doctor._tools() if c.label == "python sandbox"]
    assert check.status == "warn" and check.fix and "bubblewrap" in check.fix


def test_a_result_reads_like_a_notebook_cell() -> None:
    assert python_tool.Result().text() == "[no output]"
    cell = python_tool.Result(stdout="printed\n", stderr="warned\n", result="42", dropped=5)
    assert cell.text() == "printed\nwarned\n42\n[output truncated: 5 more characters]"
    ended = python_tool.Result(ended="the code ran past 2 s and was stopped")
    assert "state is lost" in ended.text()


def test_sessions_expire_and_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(python_tool.time, "monotonic", lambda: clock[0])
    sessions = python_tool.Sessions(python_tool.Limits(max_sessions=2, idle_s=60), scratch_root=tmp_path)
    a = sessions.get("a")
    assert sessions.get("a") is a  # one per conversation
    clock[0] += 1
    sessions.get("b")
    clock[0] += 1
    sessions.get("c")  # a third: the least recently used (a) is ended
    assert len(sessions) == 2 and sessions.get("a") is not a
    clock[0] += 61
    sessions.get("d")  # everything idle past 60 s is ended first
    assert len(sessions) == 1


def test_the_command_reads_code_from_one_place(tmp_path: Path) -> None:
    both = runner.invoke(app, ["tool", "python", "-c", "1", str(tmp_path / "x.py")])
    assert both.exit_code == errors.UsageError.exit_code and "not both" in both.output
    huge = tmp_path / "huge.py"
    huge.write_bytes(b"#" * (2 << 20))
    result = runner.invoke(app, ["tool", "python", str(huge)])
    assert result.exit_code == errors.UsageError.exit_code and "over 1 MiB" in result.output
    binary = tmp_path / "binary.py"
    binary.write_bytes(b"\xff\xfe")
    result = runner.invoke(app, ["tool", "python", str(binary)])
    assert result.exit_code == errors.UsageError.exit_code and "not UTF-8" in result.output


def test_the_commands_refuse_an_unknown_tool_and_python_without_a_sandbox(no_bubblewrap: None) -> None:
    for command in (["run", "demo", "hi"], ["chat", "demo"], ["serve", "demo"]):
        unknown = runner.invoke(app, [*command, "--tools", "shell"])
        assert unknown.exit_code == errors.UsageError.exit_code and "no tool named shell" in unknown.output
        blocked = runner.invoke(app, [*command, "--tools", "python"])
        assert blocked.exit_code == errors.ToolUnavailableError.exit_code, blocked.output
        assert "apt install bubblewrap" in blocked.output


def test_the_binary_says_it_has_no_python_for_the_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    sandbox.status.cache_clear()
    monkeypatch.setattr(sandbox.sys, "frozen", True, raising=False)
    try:
        status = sandbox.status()
        assert not status.available and "binary" in status.detail and "pip" in status.fix
    finally:
        sandbox.status.cache_clear()
