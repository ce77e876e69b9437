"""One harmony generation on the batched engine, as asynchronous events.

The engine decodes on its own thread and calls back per token; this bridges
that into asyncio, feeds the streaming harmony parser, cuts the answer at
client stop strings, enforces the per-request time limit, and frees the
engine's slot whenever the consumer goes away (a disconnected client
cancels its generation within one token).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncGenerator, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from edgeoss import harmony, spec
from edgeoss.engines.base import LogitsProcessor, QueuedEngine, Sampling
from edgeoss.errors import ApiError, EdgeossError
from edgeoss.runtime.reply import Reply, prompt_for
from edgeoss.server.logprobs import Recording


@dataclass
class Ask:
    """What to generate: the conversation and how."""

    turns: list[harmony.Turn]
    options: harmony.RenderOptions
    sampling: Sampling
    stop: list[str] = field(default_factory=list)  # client stop strings, on the answer text
    timeout_s: float | None = None
    builtin: tuple[str, ...] | None = None  # the server's tools this request uses (None: all that are on)
    mcp_servers: tuple[str, ...] | None = None  # the server's MCP servers this request uses (None: all)
    can_approve: bool = False  # the API can ask the user to approve a tool call (Responses)
    approved: tuple[tuple[int, harmony.ToolCall], ...] = ()  # calls the user approved: (turn to fill, call)
    call_required: bool = False  # tool_choice required, or a named function: the turn must end in a call
    logprobs: int | None = None  # the answer's log-probabilities with this many alternatives each (None: off)
    schema_param: str = "response_format"  # where this API takes the answer's schema (for a 400 about it)
    lenient: bool = False  # schema keywords the constraint cannot enforce are ignored (strict: false), not refused


class _StopCutter:
    """Cuts answer text at the first client stop string, holding back any
    tail that could still become one."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = [s for s in stops if s]
        self.buffer = ""
        self.hit = False

    def feed(self, text: str) -> str:
        if not self.stops:
            return text
        self.buffer += text
        cut = min((i for s in self.stops if (i := self.buffer.find(s)) >= 0), default=-1)
        if cut >= 0:
            self.hit = True
            out, self.buffer = self.buffer[:cut], ""
            return out
        hold = max((n for s in self.stops for n in range(1, len(s)) if self.buffer.endswith(s[:n])), default=0)
        out = self.buffer[: len(self.buffer) - hold]
        self.buffer = self.buffer[len(out) :]
        return out

    def flush(self) -> str:
        out, self.buffer = self.buffer, ""
        return out


def prepare(engine: QueuedEngine, ask: Ask, outcome: Reply) -> list[int]:
    """The prompt's token ids; ContextOverflow when they do not fit one sequence."""
    return prompt_for(ask.turns, ask.options, outcome, engine.context_length, ask.sampling.max_tokens)


async def _next(tokens: asyncio.Queue[int | BaseException | None], wait: float | None) -> int | BaseException | None:
    """The next item, within `wait` seconds (TimeoutError after). Not asyncio.wait_for where
    asyncio.timeout exists: before Python 3.12, wait_for can swallow a cancellation (a client
    gone, a cancelled background response) that meets an arriving token, and the generation
    would run on to its end."""
    if wait is None:
        return await tokens.get()
    timeout = getattr(asyncio, "timeout", None)  # Python 3.11 and later
    if timeout is None:
        return await asyncio.wait_for(tokens.get(), wait)
    async with timeout(wait):
        return await tokens.get()


async def events(
    engine: QueuedEngine,
    prompt: list[int],
    ask: Ask,
    outcome: Reply,
    processor: LogitsProcessor | None = None,
    builtin: Collection[str] = (),
) -> AsyncGenerator[harmony.Event, None]:
    """Events of one reply to `prompt` (from prepare()); `builtin`: the tool namespaces
    whose calls are edgeoss's to answer (tools/loop.py). The generated ids are kept in
    `outcome.tokens`, for a prompt that goes on after a tool's answer."""
    loop = asyncio.get_running_loop()
    tokens: asyncio.Queue[int | BaseException | None] = asyncio.Queue()

    def emit(item: int | BaseException | None) -> None:
        loop.call_soon_threadsafe(tokens.put_nowait, item)

    cancel = threading.Event()
    parser = harmony.StreamParser(builtin)
    outcome.result = parser.result
    cutter = _StopCutter(ask.stop)
    engine.submit(prompt, ask.sampling, emit, spec.STOP_TOKENS, cancel, processor, outcome.timings)
    deadline = time.monotonic() + ask.timeout_s if ask.timeout_s else None
    content: list[str] = []
    recorder = processor.recorder if isinstance(processor, Recording) else None
    step = -1  # this generation's index of the token last received
    scored: list[dict[str, Any]] = []  # log-probabilities of answer tokens not yet sent with their text
    try:
        while True:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                item = await _next(tokens, wait)
            except TimeoutError:
                outcome.timed_out = True
                cancel.set()  # the engine ends the job and sends None
                deadline = None
                continue
            if item is None:
                break
            if isinstance(item, EdgeossError):
                # The engine could not go on (a worker lost mid-run): the server's fault, not the
                # request's, and not a crash: each API says it in its own shape (503 or a stream error).
                raise ApiError(503, item.message, "server_error", code="engine_failed") from item
            if isinstance(item, BaseException):
                raise item
            outcome.tokens.append(item)
            step += 1
            if cutter.hit:
                continue  # the answer already ended at a stop string; the engine is stopping
            for event in parser.feed(item):
                if event.kind == "content":
                    entry = recorder.entry(step, item) if recorder is not None else None
                    if entry is not None:
                        scored.append(entry)
                    text = cutter.feed(event.text)
                    if cutter.hit:
                        cancel.set()
                    if not text:
                        continue  # held back (a stop string may be starting): its scores go with the next text
                    content.append(text)
                    event = harmony.Event("content", text, logprobs=scored or None)
                    scored = []
                elif event.kind == "done":
                    continue  # sent once, below, after the stop-string tail
                yield event
    finally:
        cancel.set()  # a consumer that went away (client disconnect) frees the slot
    tail = cutter.flush()
    if tail:
        content.append(tail)
        yield harmony.Event("content", tail, logprobs=scored or None)
    parser.result.content = "".join(content)
    if cutter.hit:
        parser.result.finish_reason = ""
        reason = "stop"
    elif outcome.timed_out:
        reason = "length"
    else:
        reason = parser.result.finish_reason or outcome.timings.stop_reason or "length"
        parser.result.finish_reason = ""
    for event in parser.finish(reason):
        yield event
