"""A killed parent leaves no server behind: the tray's server (started through
the Supervisor the tray uses) stops by itself when the tray is SIGKILLed, and
frees its port (the lifeline itself: tests/unit/test_lifeline.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

import needs_llama
from edgeoss.discover.ports import port_free
from server_process import free_port, user_env

# A stand-in for `edgeoss tray` without a desktop: the same Supervisor starts the server.
TRAY = """
import sys, time
from edgeoss.desktop.supervisor import Supervisor
s = Supervisor()
s.start("demo", int(sys.argv[1]), "medium")
print(s.pid(), flush=True)
time.sleep(600)
"""


def _gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        # A zombie: it has exited and is waiting for a parent that no longer exists to reap it.
        status = Path(f"/proc/{pid}/status")
        if status.exists() and "State:\tZ" in status.read_text():
            return True
        time.sleep(0.2)
    return False


def _ready(port: int, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).json().get("status") == "ready":
                return
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.5)
    raise AssertionError("the server did not get ready")


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL and /proc")
def test_killing_the_tray_stops_its_server(edgeoss_home: Path) -> None:
    needs_llama.llama_cpp()
    port = free_port()
    env = user_env(EDGEOSS_HOME=str(edgeoss_home))
    tray = subprocess.Popen([sys.executable, "-c", TRAY, str(port)], env=env, stdout=subprocess.PIPE, text=True)
    server = 0
    try:
        assert tray.stdout is not None
        server = int(tray.stdout.readline())
        _ready(port)
        tray.send_signal(signal.SIGKILL)
        tray.wait(10)
        assert _gone(server, 30), "the server outlived the tray that started it"
        assert port_free(port) is True
    finally:
        tray.kill()
        if server and not _gone(server, 0):
            os.kill(server, signal.SIGKILL)
