"""The `edgeoss` command: a thin dispatcher. Each command parses its options,
calls the one function that does the work and renders the result; the
commands live one module per group beside this one."""

from __future__ import annotations

import functools
import signal
import sys
from collections.abc import Callable
from types import FrameType
from typing import Annotated, Any

import typer

from edgeoss import __version__, logs
from edgeoss.cli import chat, cluster, desktop, machine, run, serve, tool, weights
from edgeoss.cli.output import out, reported

app = typer.Typer(
    name="edgeoss",
    help="Run OpenAI's gpt-oss models on the computer you have.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        out.print(f"edgeoss {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, help="More detail on the console (-vv: debug).")
    ] = 0,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    logs.setup(verbose)


def _reported(command: Callable[..., None]) -> Callable[..., None]:
    """Every command, whatever it raises, ends in a message and an exit code, never a traceback."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> None:
        with reported():
            command(*args, **kwargs)

    return run


# The commands, in the order `edgeoss --help` lists them (the flow: weights, machine, run, serve).
for name, command in (
    ("synth", weights.synth),
    ("convert", weights.convert),
    ("export-onnx", weights.export_onnx_cmd),
    ("verify", weights.verify_cmd),
    ("pull", weights.pull),
    ("import", weights.import_cmd),
    ("list", weights.list_cmd),
    ("clean", weights.clean_cmd),
    ("rm", weights.rm_cmd),
    ("doctor", machine.doctor),
    ("plan", machine.plan_cmd),
    ("run", run.run),
    ("chat", chat.chat),
    ("serve", serve.serve),
    ("worker", cluster.worker),
    ("tray", desktop.tray),
    ("bundle", weights.bundle),
    ("spec", machine.spec_cmd),
    ("paths", machine.paths_cmd),
):
    app.command(name)(_reported(command))
app.add_typer(tool.app, name="tool")


def _terminate(signum: int, frame: FrameType | None) -> None:
    # SIGTERM takes the same clean-up path as Ctrl-C.
    raise KeyboardInterrupt


def main() -> None:
    if sys.platform != "win32":
        signal.signal(signal.SIGTERM, _terminate)
    app()
