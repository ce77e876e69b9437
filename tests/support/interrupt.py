"""Run an edgeoss command and interrupt it once it is really writing."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def interrupt_while_writing(
    args: list[str], partial: Path, pattern: str, sig: signal.Signals = signal.SIGINT, min_bytes: int = 1_000_000
) -> tuple[int, str]:
    """Start `edgeoss ARGS`, wait until a file matching `pattern` under
    `partial` holds `min_bytes`, send `sig`; return (exit code, stderr)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgeoss", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A shell starts background jobs with SIGINT ignored, and Python then
        # never installs its Ctrl-C handler: give the child the default, as a
        # terminal would, whatever started pytest.
        preexec_fn=_default_sigint,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = [p for p in partial.glob(pattern) if p.is_file() and p.stat().st_size > min_bytes]
        if found:
            break
        time.sleep(0.02)
    else:
        proc.kill()
        pytest.fail(f"edgeoss {args[0]} never started writing")
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)
    return proc.returncode, stderr
