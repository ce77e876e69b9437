"""A thread's stderr capture leaves every other thread the real stream: its writes,
its fileno for a child process, and rich's console, which looks sys.stderr up on
each write (a process-wide redirect_stderr while a model loaded sent the MCP
servers' spawn and the server's warnings into the loader's buffer)."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from edgeoss import thread_stderr


def test_only_the_capturing_thread_is_captured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = (tmp_path / "stderr").open("w")
    monkeypatch.setattr(sys, "stderr", real)
    inside, resume = threading.Event(), threading.Event()
    captured: list[str] = []

    def loader() -> None:
        with thread_stderr.captured() as buffer:
            print("metadata", file=sys.stderr)
            inside.set()
            resume.wait(10)
        captured.append(buffer.getvalue())

    worker = threading.Thread(target=loader)
    worker.start()
    assert inside.wait(10)
    try:
        print("warning from another thread", file=sys.stderr)
        sys.stderr.flush()
        assert sys.stderr.fileno() == real.fileno()
        # A child given sys.stderr (as the MCP SDK spawns a stdio server) writes to the real stream.
        child = [sys.executable, "-c", "import sys; sys.stderr.write('child\\n')"]
        subprocess.run(child, stderr=sys.stderr, check=True)
    finally:
        resume.set()
        worker.join(10)
    real.flush()
    text = (tmp_path / "stderr").read_text()
    assert captured == ["metadata\n"]
    assert "warning from another thread" in text and "child" in text and "metadata" not in text


def test_captures_nest_and_end(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    real = (tmp_path / "stderr").open("w")
    monkeypatch.setattr(sys, "stderr", real)
    with thread_stderr.captured() as outer:
        sys.stderr.write("a")
        with thread_stderr.captured() as inner:
            sys.stderr.write("b")
        sys.stderr.write("c")
    sys.stderr.write("d")
    sys.stderr.flush()
    assert (outer.getvalue(), inner.getvalue()) == ("ac", "b")
    assert (tmp_path / "stderr").read_text() == "d"
