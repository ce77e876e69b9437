"""`edgeoss tray`: the desktop launcher (desktop/)."""

from __future__ import annotations

from typing import Annotated

import typer

from edgeoss.cli.output import reported


def tray(
    no_start: Annotated[bool, typer.Option("--no-start", help="Do not start the server with the tray.")] = False,
) -> None:
    """The tray launcher: server status, start/stop, open chat, model, effort, logs, start at login."""
    from edgeoss.desktop import tray as tray_mod

    with reported():
        tray_mod.run(start_server=not no_start)
