"""The tray's menu (pystray's dummy backend) driving a real server child process
on the demo model: start, serve, stop, a crash, the effort it is started with."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import needs_llama
from edgeoss.desktop import tray
from edgeoss.desktop.controller import Controller
from tray_menu import Opened, demo_controller, items, wait_for


@pytest.fixture
def controller(edgeoss_home: Path) -> Iterator[tuple[Controller, Opened]]:
    with demo_controller() as pair:
        yield pair


def test_the_menu_starts_serves_and_stops_the_server(controller: tuple[Controller, Opened]) -> None:
    needs_llama.llama_cpp()
    c, opened = controller
    icon = tray.make_icon(c)
    entries = items(icon.menu)
    assert list(entries)[:2] == ["edgeoss: server stopped", "Start server"]
    entries["Start server"](icon)
    wait_for(c, "ready")
    line = c.status_line()
    assert "demo" in line and "llama.cpp, CPU" in line and f"port {c.settings.port}" in line
    assert list(items(icon.menu))[:2] == [line, "Stop server"]
    # One request, so the status has a speed to show.
    r = httpx.post(
        f"http://127.0.0.1:{c.settings.port}/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4},
        timeout=60,
    )
    assert r.status_code == 200
    assert c.refresh().tokens_per_s is not None and "tok/s" in c.status_line()
    entries["Open chat"](icon)
    assert opened.urls == [f"http://127.0.0.1:{c.settings.port}/"]
    entries["Open logs"](icon)
    assert opened.folders and c.supervisor.log_file.parent == opened.folders[0]
    pid = c.supervisor.pid()
    items(icon.menu)["Stop server"](icon)
    assert c.status.state == "stopped" and pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # gone, not orphaned
    assert "edgeoss serve" in c.supervisor.log_file.read_text() or "serve demo" in c.supervisor.log_file.read_text()


def test_a_crashed_server_shows_and_the_tray_stays(controller: tuple[Controller, Opened]) -> None:
    needs_llama.llama_cpp()
    c, _ = controller
    icon = tray.make_icon(c)
    c.start()
    wait_for(c, "ready")
    pid = c.supervisor.pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)  # what the OOM killer does
    wait_for(c, "crashed", 20)
    assert "exited with code -9" in c.status_line()
    assert list(items(icon.menu))[1] == "Start server"
    items(icon.menu)["Start server"](icon)  # and it can be started again
    wait_for(c, "ready")
    pid = c.supervisor.pid()
    assert pid is not None
    items(icon.menu)["Quit"](icon)  # stops the server with the tray
    assert c.status.state == "stopped"
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_the_server_child_gets_the_effort(controller: tuple[Controller, Opened]) -> None:
    needs_llama.llama_cpp()
    c, _ = controller
    c.set_effort("low")
    c.start()
    wait_for(c, "ready")
    log = c.supervisor.log_file.read_text()
    assert "--effort low" in log
