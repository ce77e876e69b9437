"""The tray's menu with pystray's dummy backend (no display needed): its entries
by name, a controller on the demo model, waiting for the server's state."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edgeoss.desktop.controller import Controller
from edgeoss.desktop.settings import TraySettings
from edgeoss.desktop.supervisor import Supervisor
from server_process import free_port

os.environ["PYSTRAY_BACKEND"] = "dummy"  # before pystray is imported: no display needed
pystray = pytest.importorskip("pystray")


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


@contextlib.contextmanager
def demo_controller() -> Iterator[tuple[Controller, Opened]]:
    """A controller of a server on the demo model at a free port; quits (stopping the server) after."""
    opened = Opened()
    settings = TraySettings(model="demo", port=free_port())
    c = Controller(settings, Supervisor(), open_url=opened.urls.append, open_folder=opened.folders.append)
    yield c, opened
    c.quit()
