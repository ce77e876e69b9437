"""`edgeoss chat`: the REPL (commands, continued lines, Ctrl-C stops the
reply, not the chat); how a reply is shown lives in chat_view.py."""

from __future__ import annotations

from typing import Annotated

import typer

from edgeoss.cli.cluster import WorkersOption
from edgeoss.cli.output import err, reported
from edgeoss.cli.run import BACKEND_HELP, open_chosen
from edgeoss.cli.tool import (
    AllowPrivateOption,
    BrowserSearchOption,
    McpOption,
    ToolsOption,
    ToolTimeoutOption,
    mcp_hub,
    tool_settings,
)
from edgeoss.tools import PYTHON_TIMEOUT_S


def chat(
    model: Annotated[str | None, typer.Argument(help="A stored name, a .gguf file, an ONNX folder, or demo.")] = None,
    backend: Annotated[str | None, typer.Option(help=BACKEND_HELP)] = None,
    effort: Annotated[str, typer.Option(help="Reasoning effort: low, medium or high.")] = "medium",
    reasoning: Annotated[str, typer.Option(help="Reasoning display: fold (one line), show or hide.")] = "fold",
    max_tokens: Annotated[int, typer.Option(min=1, help="Most tokens per reply.")] = 2048,
    tools: ToolsOption = "",
    tool_timeout: ToolTimeoutOption = PYTHON_TIMEOUT_S,
    browser_search: BrowserSearchOption = "",
    browser_allow_private: AllowPrivateOption = False,
    mcp: McpOption = None,
    workers: WorkersOption = None,
) -> None:
    """Talk to a model: /effort low|medium|high, /reasoning fold|show|hide, /show, /clear, /exit;
    end a line with \\ to continue it."""
    import threading

    from edgeoss import harmony
    from edgeoss.cli import chat_view
    from edgeoss.engines.base import Sampling
    from edgeoss.runtime import reply as generate
    from edgeoss.tools import loop

    with reported():
        chat_view.check_mode(reasoning)
        harmony.check_effort(effort)
        settings = tool_settings(tool_timeout, browser_search, browser_allow_private)
        toolbox = loop.toolbox_of(loop.parse_tools(tools, settings), settings, mcp_hub(mcp))
        engine, chosen = open_chosen(model, backend, workers)
        turns: list[harmony.Turn] = []
        last_reasoning = ""
        err.print(f"chatting with {chosen.name} (effort {effort}); /exit to leave", highlight=False, markup=False)
        try:
            while True:
                try:
                    lines = [input("you> ")]
                    while lines[-1].endswith("\\"):
                        lines[-1] = lines[-1][:-1]
                        lines.append(input("...> "))
                except (EOFError, KeyboardInterrupt):
                    break
                text = "\n".join(lines).strip()
                if not text:
                    continue
                command, _, argument = text.partition(" ")
                if command in ("/exit", "/quit"):
                    break
                if command == "/clear":
                    turns.clear()
                    err.print("history cleared", highlight=False)
                    continue
                if command == "/effort":
                    if argument.strip() in harmony.EFFORTS:
                        effort = argument.strip()
                        err.print(f"effort {effort}", highlight=False)
                    else:
                        err.print("usage: /effort low|medium|high", highlight=False)
                    continue
                if command == "/reasoning":
                    if argument.strip() in chat_view.MODES:
                        reasoning = argument.strip()
                        err.print(f"reasoning {reasoning}", highlight=False)
                    else:
                        err.print("usage: /reasoning fold|show|hide", highlight=False)
                    continue
                if command == "/show":
                    err.print(last_reasoning or "(no reasoning in the last reply)", style="dim", markup=False)
                    continue
                turns.append(harmony.Turn("user", text))
                reply = generate.Reply()
                view = chat_view.ReplyView(reasoning, err)
                cancel = threading.Event()
                stopped = False
                try:
                    for event in loop.stream(
                        engine,
                        turns,
                        harmony.RenderOptions(effort=effort),
                        Sampling(max_tokens=max_tokens),
                        reply,
                        toolbox,
                        cancel,
                    ):
                        if event.kind == "reasoning":
                            view.reasoning(event.text, reply.result.reasoning_tokens)
                        elif event.kind in ("content", "preamble"):
                            view.answer(event.text)
                        elif event.kind in ("builtin_call", "builtin_result") and event.tool_call is not None:
                            shown = event.tool_call.arguments if event.kind == "builtin_call" else event.text
                            view.tool(event.kind, event.tool_call.name, shown)
                except KeyboardInterrupt:
                    cancel.set()  # Ctrl-C stops this reply, not the chat
                    stopped = True
                view.finish(stopped)
                last_reasoning = reply.result.reasoning + ("\n\n" + view.tool_text if view.tool_text else "")
                turns.append(harmony.Turn("assistant", reply.result.content, reply.result.reasoning))
        finally:
            engine.close()
            toolbox.close()
