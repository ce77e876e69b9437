"""The tray: its menu with pystray's dummy backend, start at login, the
settings file (the menu driving a real server child process:
tests/system/test_tray_server.py)."""

from __future__ import annotations

import plistlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgeoss.desktop import autostart, tray
from edgeoss.desktop.controller import PLANNED, Controller
from edgeoss.desktop.settings import TraySettings
from edgeoss.desktop.supervisor import Supervisor
from tray_menu import Opened, demo_controller, items


@pytest.fixture
def controller(edgeoss_home: Path) -> Iterator[tuple[Controller, Opened]]:
    with demo_controller() as pair:
        yield pair


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


def test_the_tools_setting_is_remembered_and_reaches_the_server_command(
    controller: tuple[Controller, Opened], monkeypatch: pytest.MonkeyPatch
) -> None:
    c, _ = controller
    monkeypatch.setattr(c, "tool_available", lambda name: True)
    started: list[tuple[object, ...]] = []
    monkeypatch.setattr(c.supervisor, "start", lambda *args: started.append(args))
    icon = tray.make_icon(c)
    tools_menu = items(icon.menu)["Tools for the model"].submenu
    entry = items(tools_menu)["python (sandboxed)"]
    assert not entry.checked  # off until turned on
    entry(icon)
    assert entry.checked and TraySettings.load().tools == ["python"]
    c.start()
    assert started[-1][-1] == ["python"]
    entry(icon)
    assert not entry.checked and TraySettings.load().tools == []


def test_without_a_sandbox_the_python_tool_cannot_be_turned_on(
    controller: tuple[Controller, Opened], monkeypatch: pytest.MonkeyPatch
) -> None:
    c, _ = controller
    monkeypatch.setattr(c, "tool_available", lambda name: False)
    tools_menu = items(tray.make_icon(c).menu)["Tools for the model"].submenu
    entry = items(tools_menu)["python (no sandbox on this machine)"]
    assert not entry.enabled


def test_the_supervisor_passes_the_tools(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []

    def spawn(command: list[str], *args: object, **kwargs: object) -> tuple[object, object]:
        seen.append(command)
        raise RuntimeError("not starting anything in a unit test")

    monkeypatch.setattr("edgeoss.desktop.supervisor.lifeline.spawn", spawn)
    with pytest.raises(RuntimeError):
        Supervisor().start(None, 8734, "low", ["python"])
    assert seen[0][-2:] == ["--tools", "python"]
