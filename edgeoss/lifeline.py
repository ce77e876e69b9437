"""A child process that outlives its parent stops: the tray's server must not
hold the port and the model's memory after the tray is killed.

The parent keeps the write end of a pipe and hands the read end to the child
(POSIX). The kernel closes the write end however the parent ends, SIGKILL
included, so the child's blocking read returns end-of-file at once. Where
no pipe can be passed (Windows), the child polls the parent's pid, checked
against its start time so that a reused pid does not keep it alive.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import IO

from edgeoss import constants

log = logging.getLogger(__name__)

POLL_S = 1.0


class Lifeline:
    """The parent's side: `child_env()` for the child; close() (or the
    parent's death) tells the child to stop."""

    def __init__(self) -> None:
        self._write: int | None = None
        self._read: int | None = None
        if sys.platform != "win32":
            self._read, self._write = os.pipe()  # neither end is inherited unless passed

    def child_env(self, env: dict[str, str]) -> tuple[dict[str, str], tuple[int, ...]]:
        """The child's environment and the descriptors it must inherit."""
        env = {**env, constants.ENV_PARENT_PID: str(os.getpid())}
        if self._read is None:
            return env, ()
        env[constants.ENV_PARENT_PIPE] = str(self._read)
        return env, (self._read,)

    def started(self) -> None:
        """After Popen: only the child keeps the read end."""
        if self._read is not None:
            os.close(self._read)
            self._read = None

    def close(self) -> None:
        for fd in (self._read, self._write):
            if fd is not None:
                os.close(fd)
        self._read = self._write = None


def spawn(
    command: list[str], env: dict[str, str], stdout: IO[bytes] | int, start_new_session: bool = False
) -> tuple[subprocess.Popen[bytes], Lifeline]:
    """A child with a lifeline (it stops when this process is gone), no standard
    input, and its output and errors into `stdout` (a file, or subprocess.PIPE).
    The child is edgeoss (its start calls watch()), or a Python module run
    under `python -m edgeoss.lifeline MODULE ARGS...`."""
    line = Lifeline()
    env, fds = line.child_env(env)
    try:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=subprocess.STDOUT,
            env=env,
            pass_fds=fds,
            start_new_session=start_new_session,
        )
    except BaseException:
        line.close()
        raise
    line.started()
    return process, line


def watch(on_gone: Callable[[], None] | None = None) -> bool:
    """In a child edgeoss started: call `on_gone` (default: stop this process as
    SIGTERM does) when the parent is gone. False when no parent asked for it."""
    pipe = os.environ.pop(constants.ENV_PARENT_PIPE, None)
    pid = os.environ.pop(constants.ENV_PARENT_PID, None)
    if pipe is None and pid is None:
        return False
    action = on_gone or _stop_this_process
    if pipe is not None and pipe.isdigit():
        target: Callable[[], None] = lambda: _wait_for_eof(int(pipe), action)  # noqa: E731
    elif pid is not None and pid.isdigit():
        target = lambda: _poll_parent(int(pid), action)  # noqa: E731
    else:
        return False
    threading.Thread(target=target, name="edgeoss-lifeline", daemon=True).start()
    return True


def _wait_for_eof(fd: int, on_gone: Callable[[], None]) -> None:
    try:
        while os.read(fd, 64):
            pass  # nothing is ever written; only end-of-file matters
    except OSError:
        pass
    log.warning("the process that started this one is gone; stopping")
    on_gone()


def _poll_parent(pid: int, on_gone: Callable[[], None]) -> None:
    import psutil

    try:
        created = psutil.Process(pid).create_time()
    except psutil.Error:
        created = None
    while created is not None:
        time.sleep(POLL_S)
        try:
            if psutil.Process(pid).create_time() != created:
                break
        except psutil.Error:
            break
    log.warning("the process that started this one is gone; stopping")
    on_gone()


def _stop_this_process() -> None:
    if sys.platform == "win32":
        import _thread

        _thread.interrupt_main()  # the same clean-up path as Ctrl-C
    else:
        os.kill(os.getpid(), signal.SIGTERM)


def main(argv: list[str]) -> None:
    """`python -m edgeoss.lifeline MODULE ARGS...`: run a module as `python -m` would,
    stopping when the edgeoss process that started it is gone (for a helper such as
    onnxruntime-genai's model builder, which knows nothing of lifelines)."""
    import runpy

    if not argv:
        raise SystemExit("usage: python -m edgeoss.lifeline MODULE [ARGS...]")
    watch()
    sys.argv = argv
    runpy.run_module(argv[0], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
