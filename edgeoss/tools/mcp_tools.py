"""MCP servers' tools for the model, through the official `mcp` SDK.

`edgeoss serve --mcp FILE` reads the `mcpServers` JSON that MCP clients
share (Claude Desktop, Cursor, VS Code):

    {"mcpServers": {
        "files": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/tmp/x"],
                  "tools": ["read_file", "list_directory"]},
        "search": {"url": "http://127.0.0.1:8000/mcp", "headers": {"Authorization": "Bearer ..."}}
    }}

A `command` is a stdio server: a child process of edgeoss (its standard input
is a pipe from edgeoss, so it ends when edgeoss does, even when edgeoss is
killed); a `url` is a streamable-HTTP server. `tools` (edgeoss's own key) is
the allowlist: only those tools are offered, and a call to any other is
refused; without it, every tool the server lists. `disabled: true` skips a
server. Each server's tools are offered to the model in a namespace of its
own (the server's name), so the model calls `files.read_file`.

The SDK's clients live on one background event loop: each server has one
task that enters its client, answers calls from a queue, and leaves it (the
SDK's cancel scopes must be left by the task that entered them).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeoss import fsutil, harmony
from edgeoss.errors import ToolUnavailableError, UsageError

log = logging.getLogger(__name__)

RESERVED = frozenset({"functions", "python", "browser", "assistant", "user", "system", "developer", "tool"})
"""Names a server cannot take: harmony's own namespaces and roles."""
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
CONNECT_TIMEOUT_S = 30.0
CALL_TIMEOUT_S = 120.0
MAX_SERVERS = 32


@dataclass(frozen=True)
class ServerSpec:
    name: str  # the namespace the model calls its tools in
    command: str | None = None  # a stdio server ...
    args: tuple[str, ...] = ()
    env: dict[str, str] | None = None
    cwd: str | None = None
    url: str | None = None  # ... or a streamable-HTTP one
    headers: dict[str, str] = field(default_factory=dict)
    allow: tuple[str, ...] | None = None  # None: every tool the server lists
    approval: bool = False  # each call waits for the user's yes (Responses' mcp_approval_request)


def namespace_of(name: str) -> str:
    """A server's name as a namespace the model can write: `my-server` is `my_server`."""
    cleaned = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return cleaned if cleaned[:1].isalpha() else f"mcp_{cleaned}"


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UsageError(f"{where} must be a list of strings")
    return tuple(value)


def _mapping(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise UsageError(f"{where} must be an object of strings")
    return dict(value)


def load(path: Path) -> list[ServerSpec]:
    """The servers of an `mcpServers` file; a usage error naming what is wrong."""
    try:
        data = fsutil.read_json(path, limit=1 << 20)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise UsageError(f"{path} is not an MCP configuration: {exc}") from None
    servers = data.get("mcpServers") if isinstance(data, dict) else None
    if not isinstance(servers, dict):
        raise UsageError(f"{path} has no mcpServers object", hint='{"mcpServers": {"name": {"command": ...}}}')
    if len(servers) > MAX_SERVERS:
        raise UsageError(f"{path} names {len(servers)} servers; {MAX_SERVERS} at most")
    specs: list[ServerSpec] = []
    for raw_name, entry in servers.items():
        where = f"mcpServers.{raw_name}"
        if not isinstance(entry, dict):
            raise UsageError(f"{where} must be an object")
        if entry.get("disabled") is True:
            continue
        name = namespace_of(str(raw_name))
        if not _NAME.match(name) or name in RESERVED:
            raise UsageError(f"{where}: {raw_name!r} cannot name a tool namespace", hint="rename the server")
        if any(s.name == name for s in specs):
            raise UsageError(f"{where}: two servers are both {name!r} as a namespace")
        kind = entry.get("type") or entry.get("transport")
        if kind in ("sse",):
            raise UsageError(f"{where}: the old SSE transport is not supported; use the server's streamable HTTP URL")
        allow = _strings(entry["tools"], f"{where}.tools") if "tools" in entry else None
        approval = entry.get("approval", "never")
        if approval not in ("never", "always"):
            raise UsageError(f"{where}.approval must be never or always")
        if isinstance(entry.get("command"), str) and entry["command"]:
            specs.append(
                ServerSpec(
                    name,
                    command=entry["command"],
                    args=_strings(entry.get("args", []), f"{where}.args"),
                    env=_mapping(entry["env"], f"{where}.env") if "env" in entry else None,
                    cwd=str(entry["cwd"]) if isinstance(entry.get("cwd"), str) else None,
                    allow=allow,
                    approval=approval == "always",
                )
            )
        elif isinstance(entry.get("url"), str) and entry["url"].startswith(("http://", "https://")):
            specs.append(
                ServerSpec(
                    name,
                    url=entry["url"],
                    headers=_mapping(entry.get("headers", {}), f"{where}.headers"),
                    allow=allow,
                    approval=approval == "always",
                )
            )
        else:
            raise UsageError(f"{where} needs a command (stdio) or an http(s) url (streamable HTTP)")
    return specs


@dataclass
class McpTool:
    server: str
    name: str
    description: str
    schema: dict[str, Any]


@dataclass
class _Server:
    spec: ServerSpec
    tools: list[McpTool] = field(default_factory=list)
    error: str = ""  # why it is not there
    queue: asyncio.Queue[tuple[str, dict[str, Any], concurrent.futures.Future[str]] | None] | None = None


class McpHub:
    """The configured MCP servers, connected, on one background event loop."""

    def __init__(self, specs: list[ServerSpec]) -> None:
        self.servers = {s.name: _Server(s) for s in specs}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="edgeoss-mcp", daemon=True)
        self._tasks: list[concurrent.futures.Future[None]] = []
        self._started = False

    def start(self) -> None:
        """Connect every server (at most CONNECT_TIMEOUT_S each); one that fails is left out, and says why."""
        try:
            import mcp  # noqa: F401
        except ImportError:
            raise ToolUnavailableError("MCP tools need the mcp package", hint="pip install 'edgeoss[mcp]'") from None
        self._thread.start()
        self._started = True
        ready: list[concurrent.futures.Future[None]] = []
        for server in self.servers.values():
            connected: concurrent.futures.Future[None] = concurrent.futures.Future()
            ready.append(connected)
            self._tasks.append(asyncio.run_coroutine_threadsafe(self._serve(server, connected), self._loop))
        for server, connected in zip(self.servers.values(), ready, strict=True):
            try:
                connected.result(timeout=CONNECT_TIMEOUT_S)
            except Exception as exc:  # whatever the transport raised: the server is left out
                server.error = server.error or f"{type(exc).__name__}: {exc}"
            if server.error:
                log.warning("MCP server %s is not available: %s", server.spec.name, server.error)
            else:
                log.info("MCP server %s: %d tools", server.spec.name, len(server.tools))

    async def _serve(self, server: _Server, connected: concurrent.futures.Future[None]) -> None:
        from mcp import Client, StdioServerParameters

        spec = server.spec
        target: Any
        if spec.command is not None:
            target = StdioServerParameters(command=spec.command, args=list(spec.args), env=spec.env, cwd=spec.cwd)
        else:
            assert spec.url is not None
            target = spec.url
        server.queue = asyncio.Queue()
        try:
            async with Client(target, read_timeout_seconds=CALL_TIMEOUT_S) as client:
                listed = await client.list_tools()
                for tool in listed.tools:
                    if spec.allow is None or tool.name in spec.allow:
                        schema = getattr(tool, "input_schema", None) or getattr(tool, "inputSchema", None) or {}
                        server.tools.append(McpTool(spec.name, tool.name, tool.description or "", dict(schema)))
                connected.set_result(None)
                while (request := await server.queue.get()) is not None:
                    name, arguments, answer = request
                    try:
                        result = await client.call_tool(name, arguments)
                        answer.set_result(_text_of(result))
                    except Exception as exc:  # the server's failure is the model's answer
                        answer.set_result(f"the MCP tool {spec.name}.{name} failed: {exc}")
        except Exception as exc:
            server.error = f"{type(exc).__name__}: {exc}"
            if not connected.done():
                connected.set_exception(exc)
        finally:
            while server.queue is not None and not server.queue.empty():
                waiting = server.queue.get_nowait()
                if waiting is not None:
                    waiting[2].set_result(f"the MCP server {spec.name} is gone")
            server.queue = None

    def namespaces(self) -> tuple[harmony.Namespace, ...]:
        """Each connected server's tools, as a namespace of the developer message."""
        return tuple(
            harmony.Namespace(
                name,
                f"Tools of the MCP server {name}.",
                tuple(harmony.Tool(t.name, t.description, t.schema or None) for t in s.tools),
            )
            for name, s in self.servers.items()
            if s.tools and not s.error
        )

    def needs_approval(self, server_name: str) -> bool:
        server = self.servers.get(server_name)
        return server is not None and server.spec.approval

    @property
    def names(self) -> frozenset[str]:
        return frozenset(n.name for n in self.namespaces())

    def call(self, server_name: str, tool: str, arguments: str) -> str:
        """The tool's answer as text for the model (blocking)."""
        server = self.servers.get(server_name)
        if server is None or server.error or server.queue is None:
            why = server.error if server is not None else "not configured"
            return f"the MCP server {server_name} is not available ({why})"
        if not any(t.name == tool for t in server.tools):
            allowed = ", ".join(t.name for t in server.tools) or "none"
            return f"{server_name}.{tool} is not a tool offered here; the tools of {server_name} are: {allowed}"
        try:
            parsed = json.loads(arguments) if arguments.strip() else {}
        except ValueError as exc:
            return f"the arguments are not JSON: {exc}"
        if not isinstance(parsed, dict):
            return "the arguments must be a JSON object"
        answer: concurrent.futures.Future[str] = concurrent.futures.Future()
        queue = server.queue
        self._loop.call_soon_threadsafe(queue.put_nowait, (tool, parsed, answer))
        try:
            return answer.result(timeout=CALL_TIMEOUT_S + 5)
        except concurrent.futures.TimeoutError:
            return f"the MCP tool {server_name}.{tool} did not answer within {CALL_TIMEOUT_S:g} s"

    def close(self) -> None:
        """Leave every client (a stdio server's process ends) and stop the loop."""
        if not self._started:
            return
        for server in self.servers.values():
            if server.queue is not None:
                self._loop.call_soon_threadsafe(server.queue.put_nowait, None)
        for task in self._tasks:
            with contextlib.suppress(Exception):  # a server's failure is already its error, and logged
                task.result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._started = False


def _text_of(result: Any) -> str:
    """A CallToolResult as text: its text parts, the rest named; an error says it is one."""
    parts = []
    for block in getattr(result, "content", None) or []:
        kind = getattr(block, "type", "")
        if kind == "text":
            parts.append(str(getattr(block, "text", "")))
        elif kind == "resource":
            resource = getattr(block, "resource", None)
            parts.append(str(getattr(resource, "text", "") or f"[resource {getattr(resource, 'uri', '')}]"))
        else:
            parts.append(f"[{kind or 'content'} not shown: gpt-oss reads text]")
    text = "\n".join(parts)
    if not text and getattr(result, "structured_content", None) is not None:
        text = json.dumps(result.structured_content)
    return f"error: {text}" if getattr(result, "is_error", False) else text or "[no output]"
