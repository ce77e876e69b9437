"""`edgeoss run`: answer one prompt; and the model loading `chat` shares."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Annotated

import typer

from edgeoss import backends
from edgeoss.cli.cluster import WorkersOption
from edgeoss.cli.output import err, print_json, reported
from edgeoss.cli.tool import (
    AllowPrivateOption,
    BrowserSearchOption,
    McpOption,
    ToolsOption,
    ToolTimeoutOption,
    mcp_hub,
    tool_settings,
)
from edgeoss.errors import UsageError
from edgeoss.tools import PYTHON_TIMEOUT_S

if TYPE_CHECKING:
    from edgeoss.engines.base import Engine
    from edgeoss.runtime.choose import Chosen

log = logging.getLogger("edgeoss.cli")

BACKEND_HELP = (
    f"{' or '.join(backends.ENGINE_OPTIONS)}: llama.cpp (GGUF) or onnxruntime-genai (ONNX folders); "
    "default: whatever runs the model."
)


def open_chosen(
    model: str | None, backend: str | None, workers: str | None = None, ctx: int | None = None
) -> tuple[Engine, Chosen]:
    """(engine, chosen model) for MODEL, planned for this machine (and its --workers)."""
    from edgeoss.engines.loader import open_engine
    from edgeoss.harmony.encoding import preload as preload_encoding
    from edgeoss.runtime import choose

    chosen = choose.choose_here(model, backend)
    if workers:
        from edgeoss.runtime import pooled

        chosen = pooled.chosen_with_workers(chosen, pooled.parse_workers(workers), ctx)
        err.print(pooled.placement_note(chosen.settings, chosen.name), markup=False, highlight=False, soft_wrap=True)
    if chosen.is_demo:
        err.print(choose.DEMO_LABEL, style="bold yellow", markup=False, highlight=False, soft_wrap=True)
    # The prompt's encoding (a fifth of a second, holding the GIL) loads while
    # llama.cpp reads the weights in C; started earlier it would hold up the
    # probe and the file's check instead.
    engine = open_engine(chosen, while_loading=preload_encoding)
    log.info("running %s on %s, %s", chosen.name, engine.name, engine.placement)
    return engine, chosen


def run(
    args: Annotated[
        list[str], typer.Argument(help="[MODEL] PROMPT  (MODEL: a stored name, a .gguf file, an ONNX folder, or demo)")
    ],
    backend: Annotated[str | None, typer.Option(help=BACKEND_HELP)] = None,
    effort: Annotated[str, typer.Option(help="Reasoning effort: low, medium or high.")] = "medium",
    show_reasoning: Annotated[bool, typer.Option("--show-reasoning", help="Print the reasoning (dimmed).")] = False,
    max_tokens: Annotated[int, typer.Option(min=1, help="Most tokens to generate.")] = 1024,
    temperature: Annotated[float, typer.Option(min=0.0, help="Sampling temperature.")] = 1.0,
    seed: Annotated[int | None, typer.Option(help="Sampling seed.")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Reasoning, content, tool calls, usage and timings as JSON.")
    ] = False,
    tools: ToolsOption = "",
    tool_timeout: ToolTimeoutOption = PYTHON_TIMEOUT_S,
    browser_search: BrowserSearchOption = "",
    browser_allow_private: AllowPrivateOption = False,
    mcp: McpOption = None,
    workers: WorkersOption = None,
) -> None:
    """Answer one prompt and exit."""
    with reported():
        if len(args) not in (1, 2):
            raise UsageError("give a PROMPT, or a MODEL and a PROMPT")
        model, prompt = (None, args[0]) if len(args) == 1 else (args[0], args[1])
        from edgeoss import harmony
        from edgeoss.engines.base import Sampling
        from edgeoss.runtime import reply as generate
        from edgeoss.tools import loop

        harmony.check_effort(effort)
        settings = tool_settings(tool_timeout, browser_search, browser_allow_private)
        toolbox = loop.toolbox_of(loop.parse_tools(tools, settings), settings, mcp_hub(mcp))
        try:
            engine, chosen = open_chosen(model, backend, workers)
        except BaseException:
            toolbox.close()
            raise
        reply = generate.Reply()
        cancel = threading.Event()
        try:
            for event in loop.stream(
                engine,
                [harmony.Turn("user", prompt)],
                harmony.RenderOptions(effort=effort),
                Sampling(max_tokens=max_tokens, temperature=temperature, seed=seed),
                reply,
                toolbox,
                cancel,
            ):
                if as_json:
                    continue
                if event.kind == "content":
                    print(event.text, end="", flush=True)
                elif event.kind == "reasoning" and show_reasoning:
                    err.print(event.text, end="", highlight=False, markup=False, style="dim")
                elif event.kind in ("builtin_call", "builtin_result") and show_reasoning:
                    err.print(loop.activity_text(event), end="", highlight=False, markup=False, style="dim")
        except KeyboardInterrupt:
            cancel.set()
        finally:
            engine.close()
            toolbox.close()
        if as_json:
            print_json(
                {
                    "model": chosen.name,
                    "demo": chosen.is_demo,
                    "backend": f"{engine.name}, {engine.placement}",
                    **reply.to_dict(),
                }
            )
        else:
            print()
