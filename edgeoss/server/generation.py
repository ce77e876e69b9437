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
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from edgeoss import harmony, spec
from edgeoss.engines.base import LogitsProcessor, Sampling, Timings


class ContextOverflow(Exception):
    def __init__(self, prompt_tokens: int, context: int, max_tokens: int) -> None:
        super().__init__(
            f"the prompt has {prompt_tokens} tokens but the context holds {context} per sequence; "
            "shorten the conversation or restart the server with a larger --ctx"
        )
        self.prompt_tokens, self.context, self.max_tokens = prompt_tokens, context, max_tokens


@dataclass
class Ask:
    """What to generate: the conversation and how."""

    turns: list[harmony.Turn]
    options: harmony.RenderOptions
    sampling: Sampling
    stop: list[str] = field(default_factory=list)  # client stop strings, on the answer text
    timeout_s: float | None = None


@dataclass
class Outcome:
    """Filled in while the events flow; complete after the last one."""

    result: harmony.Result = field(default_factory=harmony.Result)
    timings: Timings = field(default_factory=Timings)
    prompt_tokens: int = 0
    timed_out: bool = False

    @property
    def finish_reason(self) -> str:
        return self.result.finish_reason

    def usage(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.timings.generated_tokens,
            "total_tokens": self.prompt_tokens + self.timings.generated_tokens,
            "cached_tokens": self.timings.cached_tokens,
            "reasoning_tokens": self.result.reasoning_tokens,
        }


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


def prepare(engine: object, ask: Ask, outcome: Outcome) -> list[int]:
    """The prompt's token ids; ContextOverflow when they do not fit."""
    prompt = harmony.render(ask.turns, ask.options)
    outcome.prompt_tokens = len(prompt)
    context = int(engine.context_length)  # type: ignore[attr-defined]
    if len(prompt) >= context:
        raise ContextOverflow(len(prompt), context, ask.sampling.max_tokens)
    return prompt


async def events(
    engine: object,
    prompt: list[int],
    ask: Ask,
    outcome: Outcome,
    processor: LogitsProcessor | None = None,
) -> AsyncIterator[harmony.Event]:
    """Events of one reply to `prompt` (from prepare())."""
    loop = asyncio.get_running_loop()
    tokens: asyncio.Queue[int | BaseException | None] = asyncio.Queue()

    def emit(item: int | BaseException | None) -> None:
        loop.call_soon_threadsafe(tokens.put_nowait, item)

    cancel = threading.Event()
    parser = harmony.StreamParser()
    outcome.result = parser.result
    cutter = _StopCutter(ask.stop)
    engine.submit(  # type: ignore[attr-defined]
        prompt, ask.sampling, emit, spec.STOP_TOKENS, cancel, processor, outcome.timings
    )
    deadline = time.monotonic() + ask.timeout_s if ask.timeout_s else None
    content: list[str] = []
    try:
        while True:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                item = await asyncio.wait_for(tokens.get(), wait)
            except TimeoutError:
                outcome.timed_out = True
                cancel.set()  # the engine ends the job and sends None
                deadline = None
                continue
            if item is None:
                break
            if isinstance(item, BaseException):
                raise item
            if cutter.hit:
                continue  # the answer already ended at a stop string; the engine is stopping
            for event in parser.feed(item):
                if event.kind == "content":
                    text = cutter.feed(event.text)
                    if cutter.hit:
                        cancel.set()
                    if not text:
                        continue
                    content.append(text)
                    event = harmony.Event("content", text)
                elif event.kind == "done":
                    continue  # sent once, below, after the stop-string tail
                yield event
    finally:
        cancel.set()  # a consumer that went away (client disconnect) frees the slot
    tail = cutter.flush()
    if tail:
        content.append(tail)
        yield harmony.Event("content", tail)
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
