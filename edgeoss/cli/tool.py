"""`edgeoss tool ...`: run a tool by hand, in exactly the sandbox the model gets,
to see what it can and cannot do."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from edgeoss import constants
from edgeoss.cli.output import out, print_json, reported
from edgeoss.errors import UsageError
from edgeoss.tools import PYTHON_TIMEOUT_S, ToolSettings

if TYPE_CHECKING:
    from edgeoss.tools.mcp_tools import McpHub

# The options serve, run and chat share for the tools the model may use.
ToolsOption = Annotated[
    str, typer.Option("--tools", help="Tools the model may use, comma-separated: python, browser (off by default).")
]
ToolTimeoutOption = Annotated[
    float, typer.Option("--tool-timeout", min=1, help="Seconds one python call may run before its sandbox is killed.")
]
BrowserSearchOption = Annotated[
    str,
    typer.Option(
        "--browser-search",
        envvar=constants.ENV_BROWSER_SEARCH,
        help="The browser's search: a SearXNG URL (its JSON API), or ddgs. Without it, pages open by URL only.",
    ),
]
AllowPrivateOption = Annotated[
    bool,
    typer.Option(
        "--browser-allow-private",
        help="Let the browser open pages on this computer and your own network (never 169.254.x.x). Off: safer.",
    ),
]


McpOption = Annotated[
    Path | None,
    typer.Option("--mcp", help="An mcpServers JSON file: its servers' tools are offered to the model."),
]


def mcp_hub(config: Path | None) -> McpHub | None:
    """The MCP servers of `config`, connected (for run and chat; serve connects them at start)."""
    if config is None:
        return None
    from edgeoss.tools import mcp_tools  # here: with harmony and pydantic it is a tenth of a second

    hub = mcp_tools.McpHub(mcp_tools.load(config))
    hub.start()
    return hub


def tool_settings(timeout: float, search: str, allow_private: bool) -> ToolSettings:
    return ToolSettings(python_timeout_s=timeout, browser_search=search, browser_allow_private=allow_private)


app = typer.Typer(
    name="tool",
    help="Run a tool the model can use, by hand, in the model's own sandbox.",
    no_args_is_help=True,
)

MAX_CODE_BYTES = 1 << 20


@app.command("python")
def python_cmd(
    file: Annotated[Path | None, typer.Argument(help="A Python file to run ('-': standard input).")] = None,
    code: Annotated[str | None, typer.Option("-c", help="The code to run.")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds before the sandbox is killed.", min=0.1)] = PYTHON_TIMEOUT_S,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Run Python in the python tool's sandbox: no network, no files but a scratch folder
    (/mnt/data, emptied afterwards), capped memory, CPU time and output. Prints what the
    model would read back; exits 1 when the code raised."""
    from edgeoss.tools import python_tool

    with reported():
        source = _source(file, code)
        session = python_tool.PythonSession(python_tool.Limits(timeout_s=timeout))
        try:
            result = session.run(source)
        finally:
            session.close()
        if as_json:
            print_json(result.to_dict())
        else:
            out.print(result.text(), highlight=False, markup=False, soft_wrap=True)
        if result.error or result.ended:
            raise typer.Exit(1)


def _source(file: Path | None, code: str | None) -> str:
    if (file is None) == (code is None):
        raise UsageError("give the code with -c CODE or as a FILE ('-' for standard input), not both")
    if code is not None:
        return code
    assert file is not None
    try:
        if str(file) == "-":
            raw = sys.stdin.buffer.read(MAX_CODE_BYTES + 1)
        else:
            with file.open("rb") as fh:
                raw = fh.read(MAX_CODE_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"cannot read {file}: {exc.strerror or exc}") from exc
    if len(raw) > MAX_CODE_BYTES:
        raise UsageError(f"{file} is over {MAX_CODE_BYTES >> 20} MiB: no model sends that much code")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{file} is not UTF-8 text: {exc}") from exc


@app.command("browser")
def browser_cmd(
    action: Annotated[str, typer.Argument(help="search, open or find.")],
    args: Annotated[list[str], typer.Argument(help="search QUERY | open URL | find URL PATTERN")],
    loc: Annotated[int, typer.Option(help="open: the first line to show.")] = -1,
    lines: Annotated[int, typer.Option(help="open: how many lines (default: about 1024 tokens).")] = -1,
    browser_search: BrowserSearchOption = "",
    browser_allow_private: AllowPrivateOption = False,
) -> None:
    """Run the browser tool as the model would: the same fetch (the public web only, unless
    --browser-allow-private), the same search, the same page view it reads."""
    import json

    from edgeoss.tools import browser, web

    with reported():
        policy = web.Policy(allow_private=browser_allow_private)
        try:
            search = browser.search_backend(browser_search, policy)
        except web.FetchError as exc:
            raise UsageError(f"--browser-search: {exc}") from None
        session = browser.BrowserSession(search, policy)
        if action == "search" and args:
            shown = session.call("search", json.dumps({"query": " ".join(args)}))
        elif action == "open" and len(args) == 1:
            shown = session.call("open", json.dumps({"id": args[0], "loc": loc, "num_lines": lines}))
        elif action == "find" and len(args) == 2:
            opened = session.call("open", json.dumps({"id": args[0]}))
            shown = session.call("find", json.dumps({"pattern": args[1]})) if session.stack else opened
        else:
            raise UsageError("usage: edgeoss tool browser search QUERY | open URL | find URL PATTERN")
        out.print(shown, highlight=False, markup=False, soft_wrap=True)
        if not session.stack:
            raise typer.Exit(1)  # nothing could be shown: the text above says why


@app.command("mcp")
def mcp_cmd(
    action: Annotated[str, typer.Argument(help="list, or call.")],
    config: Annotated[Path, typer.Argument(help="An mcpServers JSON file.")],
    args: Annotated[list[str] | None, typer.Argument(help="call: SERVER.TOOL 'JSON arguments'")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="list: the servers and tools as JSON.")] = False,
) -> None:
    """Connect the MCP servers of a file as `serve --mcp` does: list the tools the model would
    be offered (after each server's allowlist), or call one."""
    with reported():
        from edgeoss.tools import mcp_tools

        hub = mcp_tools.McpHub(mcp_tools.load(config))
        hub.start()
        try:
            if action == "list" and not args:
                servers = {
                    name: {"error": s.error} if s.error else {"tools": [t.name for t in s.tools]}
                    for name, s in hub.servers.items()
                }
                if as_json:
                    print_json(servers)
                    return
                for name, found in servers.items():
                    shown = ", ".join(found["tools"]) if "tools" in found else f"not available: {found['error']}"
                    out.print(f"{name}: {shown}", highlight=False, markup=False, soft_wrap=True)
            elif action == "call" and args and len(args) in (1, 2) and "." in args[0]:
                server, _, tool = args[0].partition(".")
                out.print(hub.call(server, tool, args[1] if len(args) == 2 else "{}"), highlight=False, markup=False)
            else:
                raise UsageError("usage: edgeoss tool mcp list FILE | call FILE SERVER.TOOL 'JSON'")
        finally:
            hub.close()
