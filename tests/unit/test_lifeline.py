"""The lifeline between a parent and a child edgeoss started (lifeline.py): the
child's watch fires when the parent's end closes or the parent is gone, and
never without a parent that asked for it."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from edgeoss import constants, lifeline


def test_no_parent_no_watch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(constants.ENV_PARENT_PIPE, raising=False)
    monkeypatch.delenv(constants.ENV_PARENT_PID, raising=False)
    assert lifeline.watch(lambda: None) is False


@pytest.mark.skipif(sys.platform == "win32", reason="the pipe is the POSIX path")
def test_the_watch_fires_when_the_parents_end_closes(monkeypatch: pytest.MonkeyPatch) -> None:
    line = lifeline.Lifeline()
    env, fds = line.child_env({})
    assert fds and env[constants.ENV_PARENT_PID] == str(os.getpid())
    monkeypatch.setenv(constants.ENV_PARENT_PIPE, env[constants.ENV_PARENT_PIPE])
    fired = threading.Event()
    assert lifeline.watch(fired.set) is True
    assert constants.ENV_PARENT_PIPE not in os.environ  # not passed on to this child's own children
    assert not fired.wait(0.3)  # the parent is alive
    write_end = line._write
    assert write_end is not None
    os.close(write_end)  # what the kernel does when the parent dies, however it dies
    line._write = None
    assert fired.wait(5)
    line.close()


def test_the_watch_fires_when_the_parent_pid_is_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    monkeypatch.delenv(constants.ENV_PARENT_PIPE, raising=False)
    monkeypatch.setenv(constants.ENV_PARENT_PID, str(gone.pid))
    fired = threading.Event()
    assert lifeline.watch(fired.set) is True
    assert fired.wait(5)


def test_a_helper_module_stops_with_its_parent(tmp_path: Path) -> None:
    """`python -m edgeoss.lifeline MODULE`: a helper that writes nothing (the model builder
    quantizing for minutes) stops when its parent closes the lifeline, not at its next write."""
    (tmp_path / "silent_helper.py").write_text("import time\ntime.sleep(60)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    process, line = lifeline.spawn([sys.executable, "-m", "edgeoss.lifeline", "silent_helper"], env, subprocess.DEVNULL)
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            process.wait(timeout=1)  # running: the parent is here
        line.close()  # what the kernel does when the parent is killed
        assert process.wait(timeout=10) != 0
    finally:
        process.kill()
        process.wait()


def test_the_helper_runner_needs_a_module() -> None:
    done = subprocess.run([sys.executable, "-m", "edgeoss.lifeline"], capture_output=True, text=True)
    assert done.returncode != 0 and "usage" in done.stderr
