"""Start the tray at login, the way each OS expects:

- Linux: an XDG autostart entry, $XDG_CONFIG_HOME/autostart/edgeoss.desktop;
- macOS: a LaunchAgent, ~/Library/LaunchAgents/com.edgeoss.tray.plist;
- Windows: a value under HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run.

The entry runs `edgeoss tray` through the same binary (or Python) as now.
"""

from __future__ import annotations

import importlib
import os
import plistlib
import sys
from pathlib import Path
from typing import Any

from edgeoss.desktop.supervisor import edgeoss_command

LABEL = "com.edgeoss.tray"
RUN_KEY = r"Software\Microsoft\Windows\CurrentVersion\Run"
RUN_VALUE = "edgeoss"


def tray_command() -> list[str]:
    return [*edgeoss_command(), "tray"]


def _platform() -> str:
    if sys.platform.startswith("win"):
        return "windows"
    return "macos" if sys.platform == "darwin" else "linux"


def desktop_entry_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "autostart" / "edgeoss.desktop"


def launch_agent_path() -> Path:
    return Path.home() / "Library" / "LaunchAgents" / f"{LABEL}.plist"


def desktop_entry(command: list[str]) -> str:
    # The Exec key quotes arguments with double quotes (Desktop Entry Specification).
    exec_line = " ".join('"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"' for arg in command)
    return (
        "[Desktop Entry]\n"
        "Type=Application\n"
        "Name=edgeoss\n"
        "Comment=Run gpt-oss on this computer: the edgeoss tray\n"
        f"Exec={exec_line}\n"
        "Icon=edgeoss\n"
        "Terminal=false\n"
        "Categories=Utility;\n"
        "X-GNOME-Autostart-enabled=true\n"
    )


def is_enabled(platform: str | None = None) -> bool:
    platform = platform or _platform()
    if platform == "linux":
        return desktop_entry_path().is_file()
    if platform == "macos":
        return launch_agent_path().is_file()
    return _windows_value() is not None


def enable(platform: str | None = None) -> Path | str:
    """Add the login entry; return where it went."""
    platform = platform or _platform()
    command = tray_command()
    if platform == "linux":
        path = desktop_entry_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(desktop_entry(command), encoding="utf-8")
        return path
    if platform == "macos":
        path = launch_agent_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        agent = {"Label": LABEL, "ProgramArguments": command, "RunAtLoad": True, "ProcessType": "Interactive"}
        path.write_bytes(plistlib.dumps(agent))
        return path
    winreg = _winreg()
    with winreg.OpenKey(winreg.HKEY_CURRENT_USER, RUN_KEY, 0, winreg.KEY_SET_VALUE) as key:
        winreg.SetValueEx(key, RUN_VALUE, 0, winreg.REG_SZ, _windows_command_line(command))
    return f"HKCU\\{RUN_KEY}\\{RUN_VALUE}"


def disable(platform: str | None = None) -> None:
    platform = platform or _platform()
    if platform == "linux":
        desktop_entry_path().unlink(missing_ok=True)
    elif platform == "macos":
        launch_agent_path().unlink(missing_ok=True)
    elif _windows_value() is not None:
        winreg = _winreg()
        with winreg.OpenKey(winreg.HKEY_CURRENT_USER, RUN_KEY, 0, winreg.KEY_SET_VALUE) as key:
            winreg.DeleteValue(key, RUN_VALUE)


def _winreg() -> Any:
    return importlib.import_module("winreg")  # Windows only; typed loosely so mypy checks it anywhere


def _windows_command_line(command: list[str]) -> str:
    import subprocess

    return subprocess.list2cmdline(command)


def _windows_value() -> str | None:
    if not sys.platform.startswith("win"):
        return None
    winreg = _winreg()
    try:
        with winreg.OpenKey(winreg.HKEY_CURRENT_USER, RUN_KEY) as key:
            return str(winreg.QueryValueEx(key, RUN_VALUE)[0])
    except OSError:
        return None
