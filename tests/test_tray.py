"""The tray: its menu with pystray's dummy backend, driving a real server
child process on the demo model; start at login; the settings file."""

from __future__ import annotations

import os
import plistlib
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from server_process import free_port

import needs_llama
from edgeoss.app import autostart
from edgeoss.app.controller import PLANNED, Controller
from edgeoss.app.settings import TraySettings
from edgeoss.app.supervisor import Supervisor

os.environ["PYSTRAY_BACKEND"] = "dummy"  # before pystray is imported: no display needed
pystray = pytest.importorskip("pystray")

from edgeoss.app import tray  # noqa: E402


def wait_for(controller: Controller, state: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while controller.refresh().state != state:
        assert time.monotonic() < deadline, f"still {controller.status} after {seconds} s"
        time.sleep(0.2)


def items(menu: Any) -> dict[str, Any]:
    return {str(item.text): item for item in menu.items if item is not pystray.Menu.SEPARATOR}


class Opened:
    """Test double for the browser and the file manager: records what was opened."""

    def __init__(self) -> None:
        self.urls: list[str] = []
        self.folders: list[Path] = []


@pytest.fixture
def controller(edgeoss_home: Path) -> Iterator[tuple[Controller, Opened]]:
    opened = Opened()
    settings = TraySettings(model="demo", port=free_port())
    c = Controller(settings, Supervisor(), open_url=opened.urls.append, open_folder=opened.folders.append)
    yield c, opened
    c.quit()


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


def test_choosing_the_model_and_the_effort_is_remembered(controller: tuple[Controller, Opened]) -> None:
    c, _ = controller
    icon = tray.make_icon(c)
    model_menu = items(icon.menu)["Choose model"].submenu
    names = list(items(model_menu))
    assert names[0] == PLANNED and names[-1] == "demo"
    items(model_menu)[PLANNED](icon)
    effort_menu = items(icon.menu)["Reasoning effort"].submenu
    items(effort_menu)["high"](icon)
    assert items(effort_menu)["high"].checked and not items(effort_menu)["medium"].checked
    again = TraySettings.load()
    assert (again.model, again.effort) == (None, "high")


def test_the_server_child_gets_the_effort(controller: tuple[Controller, Opened]) -> None:
    needs_llama.llama_cpp()
    c, _ = controller
    c.set_effort("low")
    c.start()
    wait_for(c, "ready")
    log = c.supervisor.log_file.read_text()
    assert "--effort low" in log


def test_a_broken_settings_file_falls_back_to_the_defaults(edgeoss_home: Path) -> None:
    TraySettings.file().parent.mkdir(parents=True, exist_ok=True)
    TraySettings.file().write_text("{not json")
    assert TraySettings.load() == TraySettings()


def test_start_at_login_on_linux(edgeoss_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    c = Controller(TraySettings(), Supervisor())
    icon = tray.make_icon(c)
    entry = items(icon.menu)["Start at login"]
    assert not entry.checked
    entry(icon)
    assert entry.checked
    desktop = tmp_path / "xdg" / "autostart" / "edgeoss.desktop"
    text = desktop.read_text()
    assert "Exec=" in text and '"-m" "edgeoss" "tray"' in text
    validate = shutil.which("desktop-file-validate")
    if validate:
        done = subprocess.run([validate, str(desktop)], capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
    entry(icon)
    assert not desktop.exists() and not entry.checked


def test_start_at_login_on_macos_writes_a_launch_agent(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    where = autostart.enable("macos")
    agent = plistlib.loads(Path(where).read_bytes())
    assert agent["Label"] == "com.edgeoss.tray" and agent["ProgramArguments"][-1] == "tray" and agent["RunAtLoad"]
    assert autostart.is_enabled("macos")
    autostart.disable("macos")
    assert not autostart.is_enabled("macos")


def test_without_a_desktop_the_tray_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYSTRAY_BACKEND", "xorg")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(tray.NoDesktopError, match="desktop session"):
        tray.make_icon(Controller(TraySettings(), Supervisor()))
