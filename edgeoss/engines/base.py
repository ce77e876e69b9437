"""The engine contract: token ids in, token ids out, cancellable, timed."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

# (token ids so far, logits of the next token) -> logits; may change them in place
LogitsProcessor = Callable[[np.ndarray, np.ndarray], np.ndarray]
# What a queued job's callback receives, on the decode thread: a token id, None at
# the end, or the exception that ended it (the server's contract: submit(..., emit)).
Emit = Callable[[int | BaseException | None], None]


class Cancellable(Protocol):
    cancel: threading.Event


def tokens_of(submit: Callable[[Emit], Cancellable]) -> Iterator[int]:
    """The plain contract over a queued one: `submit(emit)` queues the job, and
    its tokens are yielded here; a consumer that stops early cancels it."""
    tokens: queue.SimpleQueue[int | BaseException | None] = queue.SimpleQueue()
    job = submit(tokens.put)
    try:
        while (item := tokens.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        job.cancel.set()


@dataclass(frozen=True)
class Sampling:
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0  # 0: off
    min_p: float = 0.0
    seed: int | None = None
    repeat_penalty: float = 1.0
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    max_tokens: int = 512


@dataclass
class Timings:
    """One generation: what was evaluated, reused and produced, and how fast."""

    prompt_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens whose KV cache was reused
    generated_tokens: int = 0
    time_to_first_token_s: float = 0.0
    generation_s: float = 0.0
    stop_reason: str = ""  # "stop" (a stop id), "length", "cancel"
    token_times_s: list[float] = field(default_factory=list)

    def token(self, now: float) -> None:
        """Record one generated token, `now` seconds after the generation started."""
        if self.generated_tokens == 0:
            self.time_to_first_token_s = now
        self.generated_tokens += 1
        self.token_times_s.append(now)
        self.generation_s = now

    @property
    def tokens_per_s(self) -> float:
        decode = self.generation_s - self.time_to_first_token_s
        return (self.generated_tokens - 1) / decode if self.generated_tokens > 1 and decode > 0 else 0.0


def reusable_prefix(cached: Sequence[int], prompt: Sequence[int]) -> int:
    """Prompt tokens whose KV cache can be kept: the common prefix with what the
    cache holds, less at least one token, which is evaluated for fresh logits."""
    return min(common_prefix(cached, prompt), len(prompt) - 1)


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


class Engine(Protocol):
    """What every backend provides."""

    name: str
    context_length: int
    last_timings: Timings
    placement: str  # where it runs, in words: "CPU", "25 layers on the GPU", "cuda execution provider"

    def generate(
        self,
        prompt: Sequence[int],
        sampling: Sampling,
        stop: Collection[int] = (),
        cancel: threading.Event | None = None,
        logits_processor: LogitsProcessor | None = None,
        timings: Timings | None = None,
    ) -> Iterator[int]:
        """Yield generated token ids; the stop id that ends generation is yielded last.
        `timings` (or `last_timings`, with one caller at a time) says how it went."""
        ...

    def close(self) -> None: ...
