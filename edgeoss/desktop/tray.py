"""`edgeoss tray`: the tray icon and its menu (pystray), the desktop entry point.

    python -m edgeoss.desktop.tray          (the same as `edgeoss tray`)

The menu shows the server's state (model, backend, port, tokens/s) and offers
Start/Stop server, Open chat, Choose model, Reasoning effort, Tools for the model, Open logs,
Start at login and Quit. A background thread polls the server every
POLL_S seconds and redraws the icon and menu when something changed; a
server that crashed shows as crashed, and the tray stays.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from typing import Any

from edgeoss.desktop.controller import PLANNED, Controller
from edgeoss.errors import NoDesktopError
from edgeoss.harmony import EFFORTS
from edgeoss.tools import TOOL_NAMES

log = logging.getLogger(__name__)

POLL_S = 2.0
COLORS = {
    "stopped": (128, 128, 128),
    "starting": (230, 170, 30),
    "ready": (40, 170, 90),
    "failed": (210, 60, 50),
    "crashed": (210, 60, 50),
}


def icon_image(state: str, size: int = 64) -> Any:
    """The icon: a rounded square in the state's colour with a white "o"."""
    from PIL import Image, ImageDraw

    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle(
        (2, 2, size - 3, size - 3), radius=size // 5, fill=(*COLORS.get(state, COLORS["stopped"]), 255)
    )
    ring = size // 4
    draw.ellipse((ring, ring, size - ring, size - ring), outline=(255, 255, 255, 255), width=max(2, size // 10))
    return image


def _pystray() -> Any:
    if (
        os.environ.get("PYSTRAY_BACKEND") != "dummy"
        and sys.platform.startswith("linux")
        and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    ):
        raise NoDesktopError(
            "edgeoss tray needs a desktop session (DISPLAY or WAYLAND_DISPLAY is not set)",
            hint="on a machine without a desktop, run `edgeoss serve`",
        )
    try:
        import pystray
    except ImportError as exc:
        raise NoDesktopError("pystray is not installed", hint="pip install 'edgeoss[tray]'") from exc
    except Exception as exc:  # pystray picks a backend at import and raises whatever it raised
        raise NoDesktopError(f"no system tray backend could start: {exc}") from exc
    return pystray


def build_menu(controller: Controller, pystray: Any) -> Any:
    Item, Menu = pystray.MenuItem, pystray.Menu

    def model_item(name: str | None) -> Any:
        return Item(
            name or PLANNED,
            lambda: controller.choose_model(name),
            checked=lambda _item: controller.settings.model == name,
            radio=True,
        )

    def models() -> Any:
        return [model_item(None), *(model_item(name) for name in controller.models())]

    def effort_item(effort: str) -> Any:
        return Item(
            effort,
            lambda: controller.set_effort(effort),
            checked=lambda _item: controller.settings.effort == effort,
            radio=True,
        )

    def tool_item(name: str) -> Any:
        available = controller.tool_available(name)
        if name == "browser":
            label = "browser (the public web only)"
        else:
            label = f"{name} (sandboxed)" if available else f"{name} (no sandbox on this machine)"
        return Item(
            label,
            lambda: controller.toggle_tool(name),
            checked=lambda _item: name in controller.settings.tools,
            enabled=available,
        )

    return Menu(
        Item(lambda _item: controller.status_line(), None, enabled=False),
        Menu.SEPARATOR,
        Item(
            lambda _item: "Stop server" if controller.status.running else "Start server",
            controller.toggle_server,
        ),
        Item("Open chat", controller.open_chat, default=True),
        Item("Choose model", Menu(lambda: models())),
        Item("Reasoning effort", Menu(*(effort_item(e) for e in EFFORTS))),
        Item("Tools for the model", Menu(*(tool_item(t) for t in TOOL_NAMES))),
        Item("Open logs", controller.open_logs),
        Item(
            "Start at login",
            controller.toggle_start_at_login,
            checked=lambda _item: controller.start_at_login(),
        ),
        Menu.SEPARATOR,
        Item("Quit", lambda icon: _quit(icon, controller)),
    )


def _quit(icon: Any, controller: Controller) -> None:
    controller.quit()
    icon.stop()


def make_icon(controller: Controller) -> Any:
    pystray = _pystray()
    return pystray.Icon("edgeoss", icon_image("stopped"), "edgeoss", build_menu(controller, pystray))


def watch(icon: Any, controller: Controller, stop: threading.Event, every: float = POLL_S) -> None:
    """Poll the server and redraw what changed, until `stop` is set."""
    shown = ("", "")
    while not stop.is_set():
        try:
            controller.refresh()
        except Exception:  # the tray outlives anything the server does
            log.exception("polling the server failed")
        now = (controller.status.state, controller.status_line())
        if now != shown:
            shown = now
            icon.icon = icon_image(controller.status.state)
            icon.title = now[1][:127]  # some trays cut longer tooltips, Windows refuses them
            icon.update_menu()
        stop.wait(every)


def run(start_server: bool = True) -> None:
    controller = Controller()
    icon = make_icon(controller)
    stop = threading.Event()

    def setup(icon: Any) -> None:
        icon.visible = True
        if start_server:
            controller.start()
        threading.Thread(target=watch, args=(icon, controller, stop), name="edgeoss-tray-watch", daemon=True).start()

    def on_signal(signum: int, frame: object) -> None:
        # SIGTERM or Ctrl-C: stop the server, then leave at once. Raising here (the
        # CLI's default) lands inside pystray's X11 event loop, which logs it and
        # carries on, and stopping that loop from here is not reliable; the tray
        # host drops the icon when our X connection closes.
        stop.set()
        controller.quit()
        logging.shutdown()
        os._exit(0)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    try:
        icon.run(setup)
    finally:
        stop.set()
        controller.quit()


if __name__ == "__main__":
    from edgeoss import logs

    logs.setup(0)
    run()
