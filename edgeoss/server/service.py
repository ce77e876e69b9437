"""What every API route shares: the JSON body, the default effort, admission
(429 when the queue is full), the model check, starting a generation with
its metrics, and stopping it when the client goes away."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import math
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import Request

from edgeoss import harmony, spec
from edgeoss.engines.base import LogitsProcessor
from edgeoss.errors import ApiError, Busy, ContextOverflow, EdgeossError
from edgeoss.runtime.reply import Reply
from edgeoss.server import generation
from edgeoss.server.guard import presented_key
from edgeoss.server.host import ModelHost
from edgeoss.server.http_errors import bad_request
from edgeoss.server.logprobs import Recorder, Recording
from edgeoss.server.metrics import Metrics
from edgeoss.server.options import ServeOptions
from edgeoss.server.reasoning_memory import ReasoningMemory, owner_of
from edgeoss.structured import constraint, grammar
from edgeoss.tools import loop, mcp_tools
from edgeoss.tools.mcp_tools import McpHub

access_log = logging.getLogger("edgeoss.access")
# A test double can drive the model through this hook (tests/support/scripted_server.py); the product passes None.
ProcessorFor = Callable[[Request], LogitsProcessor | None]


MAX_JSON_DEPTH = 64
"""Deepest nesting a body may have: real requests (tool schemas included) stay far below it,
and code that walks a structure recursively (rendering, logging) must never meet a deeper one."""


async def json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = json.loads(raw, parse_int=_integer, parse_float=_finite, parse_constant=_not_json)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError among them
        raise bad_request(f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise bad_request(f"the body nests deeper than {MAX_JSON_DEPTH} levels") from None
    if not isinstance(body, dict):
        raise bad_request("the body must be a JSON object")
    check_structure(body)
    return body


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:  # more digits than Python converts (4,300 by default): no field takes such a number
        raise bad_request(f"the body holds a number of {len(text)} digits, more than any field takes") from None


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400: a float cannot hold it, and JSON cannot write what it would become
        raise bad_request(f"the body holds the number {text[:40]}, too large for a float")
    return value


def _not_json(name: str) -> float:
    # Python's json reads NaN and Infinity, which JSON has not; one in a body would reach
    # the replies (Responses echoes fields) and make them invalid JSON, or fail to write.
    raise bad_request(f"the body holds {name}, which is not JSON (numbers must be finite)")


def check_structure(body: object) -> None:
    """A bad request for a structure nested deeper than MAX_JSON_DEPTH or a string
    that is not text (a lone surrogate, which JSON's \\u escapes allow and UTF-8 does not).
    Iterative, so the check itself cannot overflow the stack."""
    stack: list[tuple[object, int]] = [(body, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise bad_request("the body holds a string that is not valid Unicode (a lone surrogate)") from None
            continue
        if not isinstance(value, dict | list):
            continue
        if depth > MAX_JSON_DEPTH:
            raise bad_request(f"the body nests deeper than {MAX_JSON_DEPTH} levels")
        items = [*value.keys(), *value.values()] if isinstance(value, dict) else value
        stack.extend((item, depth + 1) for item in items)


def with_effort(body: dict[str, Any], effort: str) -> dict[str, Any]:
    """The body with the server's default reasoning effort where it names none,
    in each API's own field (so Responses also reports the effort it used)."""
    reasoning = body.get("reasoning")
    options = body.get("options")
    named = (
        "reasoning_effort" in body
        or "think" in body
        or (isinstance(reasoning, dict) and "effort" in reasoning)
        # Open WebUI sends its reasoning_effort setting inside Ollama's options.
        or (isinstance(options, dict) and "reasoning_effort" in options)
    )
    return body if named else {**body, "reasoning_effort": effort, "think": effort}


async def constrained(ask: generation.Ask, processor: LogitsProcessor | None) -> LogitsProcessor | None:
    """The request's processor with its shape enforced (a response schema, function
    arguments, a required call), or as it was when there is nothing to enforce; a
    schema that cannot be enforced is a 400 naming it."""
    shape = grammar.shape_of(ask.options, ask.call_required, ask.lenient, ask.sampling.max_tokens)
    if not shape.constrains:
        return processor
    try:
        # Off the event loop: the vocabulary's first build and a large schema's compile take a while.
        compiled = await asyncio.to_thread(constraint.Compiled, shape)
    except grammar.ShapeError as exc:
        param = ask.schema_param if ask.options.response_schema is not None else "tools"
        raise ApiError(400, f"the schema cannot be enforced: {exc}", param=param, code="invalid_schema") from None
    enforce = constraint.Constraint(compiled)
    return enforce if processor is None else constraint.composed(processor, enforce)


class Server:
    """Routes shared by the API families: admission, the model check, the
    generation with its metrics, and disconnect handling."""

    def __init__(self, host: ModelHost, options: ServeOptions, metrics: Metrics, processor_for: ProcessorFor | None):
        self.host, self.options, self.metrics, self.processor_for = host, options, metrics, processor_for
        hub = McpHub(mcp_tools.load(options.mcp_config)) if options.mcp_config is not None else None
        self.toolbox = loop.toolbox_of(options.tools, options.tool_settings, hub)
        self.reasoning = ReasoningMemory()
        self.on_shutdown: list[Callable[[], Awaitable[None]]] = []  # run when the server stops

    def names(self) -> set[str]:
        info = self.host.info
        base = {info.name, info.variant, info.path.name, info.path.stem}
        ollama = spec.ollama_name(info.variant)
        if ollama is not None:
            base.add(ollama)
        return base | {n + ":latest" for n in base}

    def check_model(self, body: dict[str, Any]) -> None:
        model = body.get("model")
        if model is None or model == "":
            return
        if not isinstance(model, str):
            raise bad_request("model must be a string", "model")
        if model in self.names():
            return
        raise ApiError(
            404,
            f"model {model!r} is not served here; this server runs {self.host.info.name!r}",
            param="model",
            code="model_not_found",
        )

    def tools_for(self, ask: generation.Ask) -> tuple[str, ...]:
        """The built-in tools a request gets: all that are on (Chat Completions, Ollama), or
        those it names (Responses); naming one that is off is a 400 that says how to turn it on."""
        on = self.toolbox.builtin
        if ask.builtin is None:
            return on
        off = [name for name in ask.builtin if name not in on]
        if off:
            raise bad_request(
                f"the {off[0]} tool is off on this server; start it with: edgeoss serve --tools {off[0]}", "tools"
            )
        return ask.builtin

    async def run_approved(self, ask: generation.Ask, toolbox: loop.Toolbox) -> generation.Ask:
        """Run the calls the user approved (Responses' mcp_approval_response) and put each
        answer in the conversation, where the model goes on from it."""
        turns = list(ask.turns)
        key = loop.conversation_key(turns)
        for index, call in ask.approved:
            answer = await asyncio.to_thread(toolbox.run, call, key)
            turns[index] = harmony.Turn("tool", answer, name=call.name)
        return dataclasses.replace(ask, turns=turns, approved=())

    def mcp_for(self, ask: generation.Ask) -> tuple[str, ...] | None:
        """The MCP servers a request gets: all that are connected (None), or those it names by
        server_label (Responses); naming one that is not configured here is a 400."""
        if ask.mcp_servers is None:
            return None
        known = self.toolbox.mcp.names if self.toolbox.mcp is not None else frozenset()
        unknown = [name for name in ask.mcp_servers if name not in known]
        if unknown:
            raise bad_request(
                f"MCP server {unknown[0]!r} is not one this server runs "
                f"({', '.join(sorted(known)) or 'none'}; start it with edgeoss serve --mcp FILE)",
                "tools",
            )
        return ask.mcp_servers

    def admit(self) -> None:
        try:
            self.host.admit()
        except Busy as exc:
            self.metrics.rejected.inc()
            raise ApiError(
                429,
                f"the server is busy: {exc}; retry shortly",
                "server_busy",
                code="queue_full",
                headers={"Retry-After": "1"},
            ) from None
        self._gauges()

    def release(self) -> None:
        self.host.release()
        self._gauges()

    def _gauges(self) -> None:
        self.metrics.in_flight.set(self.host.in_flight)
        self.metrics.queue_depth.set(max(0, self.host.in_flight - self.host.parallel))

    async def start(self, request: Request, ask: generation.Ask) -> tuple[AsyncGenerator[harmony.Event, None], Reply]:
        """Admit, load if needed, check the context; (events, outcome). The
        caller must run release() when the events end (finish_events does)."""
        toolbox = self.toolbox.only(self.tools_for(ask), self.mcp_for(ask), ask.can_approve)
        if ask.approved:
            ask = await self.run_approved(ask, toolbox)
        if toolbox:
            ask = dataclasses.replace(ask, options=toolbox.render_options(ask.options))
        self.admit()
        try:
            if self.host.state == "loading":
                raise ApiError(
                    503,
                    "the model is loading; retry when /health says ready",
                    "server_busy",
                    code="model_loading",
                    headers={"Retry-After": "2"},
                )
            self.host.check_broken()
            if self.host.state == "failed":
                what = "cannot be used" if self.host.engine is not None else "could not be loaded"
                raise ApiError(503, f"the model {what}: {self.host.error}", "server_error", code="model_failed")
            try:
                engine = await self.host.ready_engine()
            except EdgeossError as exc:
                # The load failed while this request waited for it: the same 503 as after.
                raise ApiError(503, exc.message, "server_error", code="model_failed") from None
            outcome = Reply(wants_logprobs=ask.logprobs is not None)
            owner = owner_of(presented_key(request.headers))
            ask = dataclasses.replace(ask, turns=self.reasoning.fill(owner, ask.turns))
            try:
                prompt = generation.prepare(engine, ask, outcome)
            except ContextOverflow as exc:
                raise ApiError(400, str(exc), param="messages", code="context_length_exceeded") from None
            if self.options.log_prompts:
                access_log.info("prompt: %s", json.dumps([t.__dict__ for t in ask.turns], default=str)[:20000])
            processor = self.processor_for(request) if self.processor_for else None
            processor = await constrained(ask, processor)
            if ask.logprobs is not None:
                processor = Recording(processor, Recorder(ask.logprobs))
            if toolbox:
                key = loop.conversation_key(ask.turns)
                events = loop.events(engine, prompt, ask, outcome, processor, toolbox, key)
            else:
                events = generation.events(engine, prompt, ask, outcome, processor)
        except BaseException:
            self.release()
            raise
        return self.finish_events(events, outcome, owner), outcome

    async def finish_events(
        self, events: AsyncGenerator[harmony.Event, None], outcome: Reply, owner: str
    ) -> AsyncGenerator[harmony.Event, None]:
        try:
            async for event in events:
                if event.logprobs:
                    outcome.logprobs.extend(event.logprobs)
                yield event
            self.metrics.generation(outcome)
            # The reasoning that led to the calls, for a follow-up that leaves it out.
            self.reasoning.remember(owner, outcome.result.tool_calls, outcome.result.reasoning)
        finally:
            await events.aclose()
            self.release()

    async def collect(self, request: Request, events: AsyncIterator[harmony.Event]) -> None:
        """Drain events for a non-streaming reply; stop when the client leaves."""

        async def drain() -> None:
            async for _ in events:
                pass

        task = asyncio.ensure_future(drain())
        try:
            while not task.done():
                done, _ = await asyncio.wait({task}, timeout=0.25)
                if not done and await request.is_disconnected():
                    task.cancel()
                    break
            with contextlib.suppress(asyncio.CancelledError):
                await task
        finally:
            if not task.done():
                task.cancel()
