"""Start the server (`edgeoss serve`): check the exposure and the port,
choose the model, build the host, run uvicorn.

With no model installed it offers to pull the planned variant (in a
terminal; --yes pulls without asking); offline or declined, it serves the
built-in demo model under a loud banner.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from rich.console import Console

from edgeoss import constants, lifeline
from edgeoss.discover.ports import port_free
from edgeoss.errors import EdgeossError, NoModelError, UsageError
from edgeoss.runtime import choose as models
from edgeoss.server.app import create_app
from edgeoss.server.guard import check_exposure
from edgeoss.server.host import ModelHost, ModelInfo
from edgeoss.server.options import ServeOptions

log = logging.getLogger(__name__)
err = Console(stderr=True)


@dataclass(frozen=True)
class ServeRequest:
    model: str | None = None
    options: ServeOptions = field(default_factory=ServeOptions)
    parallel: int | None = None  # None: the demo's DEMO_PARALLEL, else 1
    ctx: int | None = None
    keep_alive_s: float | None = 300.0
    queue_size: int = 16
    yes: bool = False
    insecure: bool = False
    backend: str | None = None  # a --backend option (backends.ENGINE_OPTIONS); None: whatever runs the model
    gpu_layers: int | None = None  # llama.cpp placement overrides; None: as planned
    cpu_moe: int | None = None
    threads: int | None = None
    workers: tuple[str, ...] = ()  # --workers: llama.cpp RPC workers to place layers on (runtime/pooled.py)


def check_safety(request: ServeRequest) -> None:
    check_exposure(request.options, request.insecure)
    if request.parallel is not None and request.parallel < 1:
        raise UsageError("--parallel must be at least 1")


def choose_model(request: ServeRequest, ask: Callable[[str], bool]) -> models.Chosen:
    """The model to serve: as asked, else the best installed, else pull the
    planned variant (asking first), else the demo model."""
    the_plan = models.planned(request.model)
    if the_plan is None:
        return models.choose(request.model, backend=request.backend)
    try:
        return models.choose(request.model, plan=the_plan, backend=request.backend)
    except NoModelError:
        if request.model is not None or request.backend is not None:
            raise
    if the_plan.fits:
        size = the_plan.artifact.get("approx_bytes") or 0
        question = (
            f"No model is installed. Download {the_plan.variant} ({size / 1e9:.1f} GB) from the Hugging Face Hub?"
        )
        if request.yes or ask(question):
            from edgeoss.weights import pull

            try:
                pull.pull(the_plan.variant, str(the_plan.artifact.get("format", "gguf")))
                return models.choose(None, plan=the_plan)
            except EdgeossError as exc:
                err.print(f"the download failed: {exc.message}", style="yellow", markup=False)
    else:
        err.print("no gpt-oss variant fits this machine (edgeoss doctor says why)", style="yellow")
    return models.choose(models.DEMO)


def _ask_in_terminal(question: str) -> bool:
    if not sys.stdin.isatty():
        return False
    import typer

    return bool(typer.confirm(question, default=True, err=True))


def build(request: ServeRequest, chosen: models.Chosen) -> tuple[ModelHost, ServeOptions]:
    from edgeoss.engines.loader import open_server_engine

    settings, options = chosen.settings, request.options
    parallel = request.parallel
    if parallel is None:
        parallel = models.DEMO_PARALLEL if chosen.is_demo else 1
    if chosen.is_demo:
        # The demo's context is per sequence; its default budget bounds a reply that never ends.
        settings = replace(settings, context_length=models.DEMO_CONTEXT * parallel)
        options = replace(options, max_tokens=min(options.max_tokens, models.DEMO_MAX_TOKENS))
    if request.ctx is not None:
        settings = replace(settings, context_length=request.ctx)
    if request.gpu_layers is not None:
        settings = replace(settings, n_gpu_layers=request.gpu_layers)
    if request.cpu_moe is not None:
        settings = replace(settings, n_cpu_moe_layers=request.cpu_moe)
    if request.threads is not None:
        settings = replace(settings, threads=request.threads)
    if request.workers:
        from edgeoss.runtime import pooled

        settings = pooled.chosen_with_workers(replace(chosen, settings=settings), request.workers, request.ctx).settings
        err.print(pooled.placement_note(settings, chosen.name), markup=False, highlight=False, soft_wrap=True)
    if chosen.engine.one_sequence and parallel > 1:
        err.print(
            f"{chosen.engine.label} decodes one sequence at a time: --parallel {parallel} becomes 1 "
            "(other requests wait in the queue)",
            style="yellow",
            markup=False,
            highlight=False,
        )
        parallel = 1
    manifest = chosen.manifest
    info = ModelInfo(
        name=chosen.name,
        path=chosen.path,
        variant=manifest.variant if manifest is not None else chosen.name,
        is_demo=chosen.is_demo,
        size_bytes=chosen.size_bytes,
        backend=chosen.engine.label,
        quantization=chosen.quantization,
        placement=replace(chosen, settings=settings).placement,
    )
    host = ModelHost(
        info,
        settings,
        parallel=parallel,
        queue_size=request.queue_size,
        keep_alive_s=request.keep_alive_s,
        engine_factory=lambda path, s, n: open_server_engine(chosen.engine, path, s, n),
        on_state=_print_state,
    )
    return host, options


def _print_state(state: str, detail: str) -> None:
    style = {"ready": "green", "failed": "bold red", "loading": "cyan"}.get(state, "dim")
    err.print(detail, style=style, highlight=False, markup=False)


def banner(host: ModelHost, options: ServeOptions) -> None:
    url = f"http://{'[' + options.host + ']' if ':' in options.host else options.host}:{options.port}"
    if host.info.is_demo:
        err.print(f"\n  {models.DEMO_LABEL.upper()}\n  pull a real model: edgeoss pull\n", style="bold black on yellow")
    err.print(f"edgeoss serving {host.info.name} ({host.info.backend}) at {url}", highlight=False, markup=False)
    err.print(f"  web chat: {url}/   OpenAI: {url}/v1   Ollama: {url}/api", highlight=False, markup=False)
    s = host.settings
    per_seq = s.context_length // host.parallel
    err.print(
        f"  context {s.context_length} tokens ({per_seq} per sequence x {host.parallel}); "
        f"{'API key required' if options.api_key else 'no API key (loopback only)'}",
        highlight=False,
        markup=False,
    )


def run(request: ServeRequest, ask: Callable[[str], bool] = _ask_in_terminal) -> None:

    check_safety(request)
    o = request.options
    if port_free(o.port, o.host) is not True:
        raise UsageError(
            f"port {o.port} on {o.host} is in use",
            hint=f"serve with --port N (edgeoss's default is {constants.DEFAULT_PORT})",
        )
    chosen = choose_model(request, ask)
    host, options = build(request, chosen)
    banner(host, options)
    app = create_app(host, options)
    lifeline.watch()  # started by the tray: stop when it is gone
    run_app(app, o.host, o.port)


KEEP_ALIVE_S = 75
"""How long an idle connection stays open. Longer than clients keep theirs (httpx 5 s, aiohttp
15 s, browsers up to 60 s), so a client never sends a request on a connection the server is
closing at that moment (uvicorn's default, 5 s, equals httpx's and races it: a reset)."""


def run_app(app: Any, host: str, port: int) -> None:
    """uvicorn on `app`, as every edgeoss server runs (the tests' scripted server too)."""
    import uvicorn

    uvicorn.run(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=5,
        timeout_keep_alive=KEEP_ALIVE_S,
    )
