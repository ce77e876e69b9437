"""What each tray menu entry does, apart from any GUI toolkit (tested as is)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import webbrowser
from collections.abc import Callable
from pathlib import Path

from edgeoss.desktop import autostart
from edgeoss.desktop.settings import TraySettings
from edgeoss.desktop.supervisor import Status, Supervisor
from edgeoss.harmony import EFFORTS
from edgeoss.paths import paths
from edgeoss.tools import TOOL_NAMES

log = logging.getLogger(__name__)

PLANNED = "(planned: the best installed model)"


def open_path(path: Path) -> None:
    """Open a folder or file with the desktop's default application."""
    if sys.platform.startswith("win"):
        os.startfile(str(path))  # type: ignore[attr-defined,unused-ignore]
    else:
        opener = "open" if sys.platform == "darwin" else "xdg-open"
        subprocess.Popen([opener, str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class Controller:
    def __init__(
        self,
        settings: TraySettings | None = None,
        supervisor: Supervisor | None = None,
        open_url: Callable[[str], object] = webbrowser.open,
        open_folder: Callable[[Path], None] = open_path,
    ) -> None:
        self.settings = settings or TraySettings.load()
        self.supervisor = supervisor or Supervisor()
        self._open_url = open_url
        self._open_folder = open_folder
        self.status = Status("stopped")

    # ------------------------------------------------------------------ status

    def refresh(self) -> Status:
        self.status = self.supervisor.poll()
        return self.status

    def status_line(self) -> str:
        s = self.status
        if s.state == "stopped":
            return "edgeoss: server stopped"
        if s.state == "crashed":
            return f"edgeoss: server crashed: {s.detail}"
        if s.state == "starting":
            return f"edgeoss: starting on port {s.port}"
        if s.state == "failed":
            return f"edgeoss: {s.model or 'model'} failed to load: {s.detail}"
        speed = f" · {s.tokens_per_s:.1f} tok/s" if s.tokens_per_s is not None else ""
        return f"edgeoss: {s.model} · {s.backend} · port {s.port}{speed}"

    # ----------------------------------------------------------------- actions

    def start(self) -> None:
        self.supervisor.start(self.settings.model, self.settings.port, self.settings.effort, self.settings.tools)
        self.status = Status("starting", port=self.settings.port)

    def stop(self) -> None:
        self.supervisor.stop()
        self.status = Status("stopped")

    def toggle_server(self) -> None:
        if self.status.running:
            self.stop()
        else:
            self.start()

    def open_chat(self) -> None:
        if not self.status.running:
            self.start()
        self._open_url(f"http://127.0.0.1:{self.settings.port}/")

    def models(self) -> list[str]:
        """Names to choose from: the runnable stored models and the demo."""
        from edgeoss.runtime import choose as models
        from edgeoss.weights.store import Store

        names = [m.name for m in models.runnable(Store())]
        return [n for n in names if n != models.DEMO] + [models.DEMO]

    def choose_model(self, name: str | None) -> None:
        """Remember the model; a running server restarts on it."""
        self.settings.model = name
        self.settings.save()
        self._restart_if_running()

    def set_effort(self, effort: str) -> None:
        if effort not in EFFORTS:
            raise ValueError(f"effort {effort!r}")
        self.settings.effort = effort
        self.settings.save()
        self._restart_if_running()

    def tool_available(self, name: str) -> bool:
        """Whether this machine can run the tool (python: a sandbox); the menu greys it out if not."""
        if name == "browser":
            return True
        if name != "python":
            return False
        from edgeoss.tools import sandbox

        return sandbox.status().available

    def toggle_tool(self, name: str) -> None:
        """Turn a tool on or off for the server; a running server restarts with it."""
        if name not in TOOL_NAMES:
            raise ValueError(f"tool {name!r}")
        tools = self.settings.tools
        self.settings.tools = [t for t in tools if t != name] if name in tools else [*tools, name]
        self.settings.save()
        self._restart_if_running()

    def _restart_if_running(self) -> None:
        if self.status.running:
            self.stop()
            self.start()

    def open_logs(self) -> None:
        folder = paths().logs
        folder.mkdir(parents=True, exist_ok=True)
        self._open_folder(folder)

    def start_at_login(self) -> bool:
        return autostart.is_enabled()

    def toggle_start_at_login(self) -> None:
        if autostart.is_enabled():
            autostart.disable()
        else:
            where = autostart.enable()
            log.info("edgeoss starts at login: %s", where)

    def quit(self) -> None:
        self.stop()
