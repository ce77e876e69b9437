"""The cluster stage's commands: `edgeoss worker` lends this machine's memory to a main machine (llama.cpp RPC)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from edgeoss import constants
from edgeoss.cli.output import out, reported

WorkersOption = Annotated[
    str | None,
    typer.Option(
        "--workers",
        help="Machines running edgeoss worker, HOST:PORT[,HOST:PORT]: the model's layers go there when "
        "this machine's memory is not enough.",
    ),
]


def worker(
    host: Annotated[str, typer.Option(help="Address to listen on; anything but loopback needs --allow.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port the main machine connects to.")] = (
        constants.WORKER_PORT
    ),
    mem: Annotated[
        str | None, typer.Option(help="Memory to offer, e.g. 24G (default: what the devices have free).")
    ] = None,
    device: Annotated[
        list[str] | None,
        typer.Option(help="A ggml device to serve, e.g. CUDA0 or CPU (repeatable; default: the GPUs, else the CPU)."),
    ] = None,
    allow: Annotated[
        list[str] | None,
        typer.Option(help="An address or network allowed to connect (repeatable; default: loopback only)."),
    ] = None,
    threads: Annotated[int | None, typer.Option(min=1, max=1024, help="CPU threads (default: physical cores).")] = None,
    cache: Annotated[
        Path | None, typer.Option(help="A folder where the worker keeps tensors it was sent, so a reload skips them.")
    ] = None,
) -> None:
    """Offer this machine's memory to another machine's model (llama.cpp's RPC server, behind an allow list)."""
    from edgeoss.cluster import worker as worker_mod
    from edgeoss.planning.planner import gib

    with reported():
        options = worker_mod.WorkerOptions(
            host=host,
            port=port,
            allow=tuple(allow or ()),
            mem_bytes=worker_mod.parse_size(mem) if mem is not None else None,
            devices=tuple(d for value in device or () for d in value.split(",") if d),
            threads=threads,
            cache_dir=cache,
        )

        def say(line: str) -> None:
            out.print(escape(line), highlight=False)

        running = worker_mod.Worker(options, say)
        for line in worker_mod.describe(running, gib):
            say(line)
        try:
            running.serve_forever()
        finally:
            running.close()
