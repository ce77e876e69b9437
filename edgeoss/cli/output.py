"""What every command shares: the consoles, errors turned into a message and
an exit code, JSON output, and the progress bar."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape

from edgeoss.errors import EdgeossError, InterruptedByUser, UnexpectedError
from edgeoss.paths import paths

if TYPE_CHECKING:
    from rich.progress import Progress

out = Console()
err = Console(stderr=True)
log = logging.getLogger("edgeoss.cli")


@contextlib.contextmanager
def reported() -> Iterator[None]:
    """Turn our errors and Ctrl-C into a message and an exit code."""
    try:
        yield
    except KeyboardInterrupt:
        exc = InterruptedByUser("interrupted; nothing half-written was left behind")
        log.info("%s", exc.message)  # the file gets it; the console gets the message below, once
        err.print(f"[yellow]{escape(exc.message)}[/]", soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None
    except EdgeossError as exc:
        log.info("failed (exit %d): %s", exc.exit_code, exc)
        err.print(f"[bold red]error:[/] {escape(exc.message)}", highlight=False, soft_wrap=True)
        if exc.hint:
            err.print(f"[dim]hint:[/] {escape(exc.hint)}", highlight=False, soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None
    except (typer.Exit, typer.Abort, SystemExit):
        raise
    except Exception as exc:
        # A bug, not the user's mistake: the traceback goes to the log file, the terminal gets one line.
        # INFO: the file takes it; the console shows it only with -v (it gets the one line below).
        log.info("unexpected error", exc_info=True)
        where = paths().log_file
        err.print(
            f"[bold red]error:[/] unexpected {type(exc).__name__}: {escape(str(exc))} (a bug in edgeoss; "
            f"the details are in {escape(str(where))})",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(UnexpectedError.exit_code) from None


def print_json(data: Any) -> None:
    # Plain print: rich would wrap long lines and break the JSON.
    print(json.dumps(data, indent=2))


def progress_bar(disable: bool) -> Progress:
    # Imported here: rich.progress is a visible share of `edgeoss --version`'s start.
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=disable,
        transient=True,
    )
