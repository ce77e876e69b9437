"""The engine contracts: token ids in, token ids out, cancellable, timed.

Two shapes of one contract, as Protocols every engine satisfies:
- `Engine`, the plain one (run, chat, benchmarks): `generate()` yields token ids;
- `QueuedEngine`, the server's: `submit()` queues a `Job` whose tokens go to a
  callback on the engine's decode thread; llama.cpp decodes several jobs in one
  batch, onnxruntime-genai one at a time (engines/serial.py).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Collection, Iterator, MutableSequence, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np

from edgeoss.errors import EngineError

if TYPE_CHECKING:
    from edgeoss.planning.planner import Plan

# (token ids so far, logits of the next token) -> logits; may change them in place
LogitsProcessor = Callable[[np.ndarray, np.ndarray], np.ndarray]


def sampled(processor: LogitsProcessor | None, token: int) -> None:
    """Tell a processor the token just sampled, before the next decode starts: one that has
    `accept(token)` (the schema constraint) prepares its next step while the model computes
    the next logits. Engines call it after each sampled token that another step follows."""
    accept = getattr(processor, "accept", None)
    if accept is not None:
        accept(token)


# What a queued job's callback receives, on the decode thread: a token id, None at
# the end, or the exception that ended it (the server's contract: submit(..., emit)).
Emit = Callable[[int | BaseException | None], None]


class Cancellable(Protocol):
    cancel: threading.Event


def check_prompt(prompt: Sequence[int], context_length: int, where: str = "") -> int:
    """The tokens left to generate after `prompt`; an EngineError for an empty
    prompt or one that fills the context (`where` says whose, e.g. "per sequence")."""
    if not prompt:
        raise EngineError("empty prompt")
    if len(prompt) >= context_length:
        raise EngineError(f"the prompt has {len(prompt)} tokens; the context holds {context_length}{where}")
    return context_length - len(prompt)


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
class LoadSettings:
    """How to load a model, for either engine: usually from a Plan.

    `device` is where it runs: llama.cpp's GPU API (cuda, metal) or
    onnxruntime-genai's execution provider (cuda, webgpu, dml), or cpu.
    llama.cpp places by layer (`n_gpu_layers`, and the experts of
    `n_cpu_moe_layers` layers kept in RAM); onnxruntime-genai runs the whole
    graph on its provider and reads only the context and the device.
    """

    context_length: int = 4096
    device: str = "cpu"
    n_gpu_layers: int = 0
    n_cpu_moe_layers: int = 0
    flash_attention: bool = True
    threads: int | None = None
    n_ubatch: int = 512
    use_mmap: bool = True
    swa_full: bool = False  # sliding layers keep only the window (the planner's memory model)
    # Devices beyond this machine's CPU, in llama.cpp's order, with the layers each holds
    # (planning/pool.py): a local device's ggml name (CUDA0), or a worker's ENDPOINT#INDEX.
    pool: tuple[tuple[str, int], ...] = ()

    @property
    def workers(self) -> tuple[str, ...]:
        """The endpoints of the workers this placement uses."""
        return tuple(dict.fromkeys(d.rpartition("#")[0] for d, _ in self.pool if "#" in d))

    @classmethod
    def from_plan(cls, plan: Plan, device: str) -> LoadSettings:
        return cls(
            context_length=plan.context_length,
            device=device,
            n_gpu_layers=plan.n_gpu_layers,
            n_cpu_moe_layers=plan.n_cpu_moe_layers,
            flash_attention=plan.flash_attention,
        )

    def placement(self) -> str:
        """Where llama.cpp's layers run, in words (with the decode threads, once known)."""
        threads = f", {self.threads} CPU thread{'s' if self.threads != 1 else ''}" if self.threads else ""
        if self.pool:
            # The last device's split counts the output matrix too (planning/pool.py).
            names = ["this CPU" if d == "CPU" else d.removesuffix("#0") for d, _ in self.pool]
            counts = [n for _, n in self.pool[:-1]] + [self.pool[-1][1] - 1]
            parts = [f"{n} on {name}" for name, n in zip(names, counts, strict=True) if n]
            return f"layers: {', '.join(parts)}, the others on this CPU; the output on {names[-1]}{threads}"
        if self.n_gpu_layers <= 0:
            return f"CPU{threads}"
        experts = f", experts of {self.n_cpu_moe_layers} layers on the CPU" if self.n_cpu_moe_layers else ""
        return f"{self.n_gpu_layers} layers on the GPU{experts}{threads}"


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


@dataclass(eq=False)
class Job:
    """One queued generation (the server's contract), owned by the engine's decode thread."""

    prompt: list[int]
    sampling: Sampling
    stop: frozenset[int]
    cancel: threading.Event
    emit: Emit
    logits_processor: LogitsProcessor | None = None
    timings: Timings = field(default_factory=Timings)
    budget: int = 0  # most tokens it may generate: max_tokens, less what the context has left
    pending: list[int] = field(default_factory=list)  # tokens to evaluate next (batched engine)
    started: float = 0.0
    done: bool = False

    @classmethod
    def new(
        cls,
        prompt: Sequence[int],
        sampling: Sampling,
        emit: Emit,
        stop: Collection[int],
        cancel: threading.Event | None,
        logits_processor: LogitsProcessor | None,
        timings: Timings | None,
        context_length: int,
        where: str = "",
    ) -> Job:
        """A job for a prompt that fits the context (check_prompt), its budget set."""
        room = check_prompt(prompt, context_length, where)
        return cls(
            prompt=list(prompt),
            sampling=sampling,
            stop=frozenset(stop),
            cancel=cancel or threading.Event(),
            emit=emit,
            logits_processor=logits_processor,
            timings=timings if timings is not None else Timings(),
            budget=min(sampling.max_tokens, room),
        )


class JobQueue:
    """What both queued engines share: jobs waiting for the decode thread under
    one condition, the closing flag, and the plain contract over submit()."""

    _cond: threading.Condition
    _closing: bool
    _waiting: MutableSequence[Job]
    last_timings: Timings
    broken = ""  # why the engine cannot generate any more (a worker lost mid-run); "" while it can
    lost_workers: tuple[str, ...] = ()

    def submit(
        self,
        prompt: Sequence[int],
        sampling: Sampling,
        emit: Emit,
        stop: Collection[int] = (),
        cancel: threading.Event | None = None,
        logits_processor: LogitsProcessor | None = None,
        timings: Timings | None = None,
    ) -> Job:
        raise NotImplementedError

    def _enqueue(self, job: Job) -> Job:
        self.last_timings = job.timings
        with self._cond:
            if self._closing:
                raise EngineError("the engine is closed")
            if self.broken:
                raise EngineError(self.broken)
            self._waiting.append(job)
            self._cond.notify()
        return job

    def generate(
        self,
        prompt: Sequence[int],
        sampling: Sampling,
        stop: Collection[int] = (),
        cancel: threading.Event | None = None,
        logits_processor: LogitsProcessor | None = None,
        timings: Timings | None = None,
    ) -> Iterator[int]:
        """The plain contract, queued behind any submitted job."""
        return tokens_of(lambda emit: self.submit(prompt, sampling, emit, stop, cancel, logits_processor, timings))


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


class QueuedEngine(Protocol):
    """The server's contract: jobs queued, tokens delivered to a callback."""

    name: str
    context_length: int  # per sequence
    parallel: int  # sequences decoded together
    last_timings: Timings
    placement: str

    def submit(
        self,
        prompt: Sequence[int],
        sampling: Sampling,
        emit: Emit,
        stop: Collection[int] = (),
        cancel: threading.Event | None = None,
        logits_processor: LogitsProcessor | None = None,
        timings: Timings | None = None,
    ) -> Job:
        """Queue a generation; `emit` gets its tokens, then None (or the exception that ended it)."""
        ...

    def close(self) -> None: ...
