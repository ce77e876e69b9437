"""`edgeoss serve`: parse the options; server/launch.py does the rest."""

from __future__ import annotations

from typing import Annotated

import typer

from edgeoss import constants
from edgeoss.cli.cluster import WorkersOption
from edgeoss.cli.output import reported
from edgeoss.cli.run import BACKEND_HELP
from edgeoss.cli.tool import (
    AllowPrivateOption,
    BrowserSearchOption,
    McpOption,
    ToolsOption,
    ToolTimeoutOption,
    tool_settings,
)
from edgeoss.tools import PYTHON_TIMEOUT_S


def serve(
    model: Annotated[
        str | None, typer.Argument(help="A stored name, a .gguf file, an ONNX folder, or demo (default: planned).")
    ] = None,
    backend: Annotated[str | None, typer.Option(help=BACKEND_HELP)] = None,
    effort: Annotated[
        str, typer.Option(help="Reasoning effort when a request names none: low, medium, high.")
    ] = "medium",
    host: Annotated[str, typer.Option(help="Address to bind; not loopback needs --api-key.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port.")] = constants.DEFAULT_PORT,
    api_key: Annotated[
        str | None, typer.Option(envvar=constants.ENV_API_KEY, help="Key clients must send (Bearer).")
    ] = None,
    cors_origin: Annotated[
        list[str] | None, typer.Option(help="A web origin allowed to call the API (repeatable).")
    ] = None,
    parallel: Annotated[
        int | None, typer.Option(min=1, max=64, help="Sequences decoded together (default 1; the demo: 4).")
    ] = None,
    ctx: Annotated[int | None, typer.Option(min=256, help="Context tokens in all, split across --parallel.")] = None,
    keep_alive: Annotated[str, typer.Option(help='Unload after this idle time ("5m", "0", "-1": never).')] = "5m",
    queue: Annotated[int, typer.Option(min=0, help="Requests that may wait for a slot before 429.")] = 16,
    timeout: Annotated[float, typer.Option(min=0, help="Most seconds one generation may run (0: no limit).")] = 600,
    max_body: Annotated[int, typer.Option(min=1024, help="Largest request body in bytes.")] = 8 * 1024 * 1024,
    log_prompts: Annotated[bool, typer.Option(help="Write prompts to the access log.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Pull the planned model without asking.")] = False,
    insecure: Annotated[bool, typer.Option(help="Allow a non-loopback address without an API key.")] = False,
    tools: ToolsOption = "",
    tool_timeout: ToolTimeoutOption = PYTHON_TIMEOUT_S,
    browser_search: BrowserSearchOption = "",
    browser_allow_private: AllowPrivateOption = False,
    mcp: McpOption = None,
    gpu_layers: Annotated[
        int | None, typer.Option(min=0, help="llama.cpp: layers on the GPU (default: as planned; 999: all).")
    ] = None,
    cpu_moe: Annotated[
        int | None, typer.Option(min=0, help="llama.cpp: layers whose experts stay in RAM (default: as planned).")
    ] = None,
    threads: Annotated[
        int | None,
        typer.Option(min=1, max=1024, help="llama.cpp decode threads (default: timed on first load; EDGEOSS_THREADS)."),
    ] = None,
    workers: WorkersOption = None,
) -> None:
    """Serve a model: OpenAI Chat Completions and Responses, Ollama routes, and a web chat at /."""
    from edgeoss import harmony
    from edgeoss.runtime import pooled
    from edgeoss.server import launch as serve_mod
    from edgeoss.server.host import parse_keep_alive
    from edgeoss.server.options import ServeOptions
    from edgeoss.tools import loop, mcp_tools

    with reported():
        harmony.check_effort(effort)
        settings = tool_settings(tool_timeout, browser_search, browser_allow_private)
        if mcp is not None:
            mcp_tools.load(mcp)  # a bad file is a usage error now, not a failure at start
        options = ServeOptions(
            tools=loop.parse_tools(tools, settings),
            tool_settings=settings,
            mcp_config=mcp,
            effort=effort,
            host=host,
            port=port,
            api_key=api_key or None,
            cors_origins=list(cors_origin or []),
            max_body_bytes=max_body,
            request_timeout_s=timeout or None,
            log_prompts=log_prompts,
        )
        request = serve_mod.ServeRequest(
            model=model,
            options=options,
            parallel=parallel,
            ctx=ctx,
            keep_alive_s=parse_keep_alive(keep_alive),
            queue_size=queue,
            yes=yes,
            insecure=insecure,
            backend=backend,
            gpu_layers=gpu_layers,
            cpu_moe=cpu_moe,
            threads=threads,
            workers=pooled.parse_workers(workers),
        )
        serve_mod.run(request)
