"""Batched decoding with llama.cpp: several sequences, one context, one decode per step.

A server with N clients should not answer them one at a time. This engine
keeps N slots in one llama.cpp context (one unified KV cache, one sequence id
per slot); a single thread builds each step's batch from every active slot
(one token each while generating, chunks of prompt while reading), calls
llama_decode once, and samples each slot's next token with its own native
sampler chain. The per-token work is the same as for one sequence, so N
streams cost little more than one until the GPU or CPU is saturated.

It keeps the engine contract (generate() yields token ids) and adds
submit(), which takes a callback instead of blocking, for asyncio servers.
Each slot keeps its token history: a new request takes the free slot with the
longest common prefix and evaluates only the rest (the sliding-window rule of
llamacpp.sliding_cache_holds applies). Each slot's context is the context
length divided by the number of slots.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import logging
import threading
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edgeoss.engines import draw
from edgeoss.engines.base import (
    Emit,
    Job,
    JobQueue,
    LoadSettings,
    LogitsProcessor,
    Sampling,
    Timings,
    common_prefix,
    reusable_prefix,
    sampled,
)
from edgeoss.engines.llamacpp import binding as llama_binding
from edgeoss.engines.llamacpp import rpc
from edgeoss.engines.llamacpp import threads as llama_threads
from edgeoss.engines.llamacpp.engine import open_llama, sliding_cache_holds
from edgeoss.errors import EngineError

log = logging.getLogger(__name__)


_PENALTY_LAST_N = 64  # llama.cpp's default window for repetition penalties


@dataclass(eq=False)
class _Slot:
    seq: int
    history: list[int] = field(default_factory=list)  # tokens whose KV this sequence holds, in order
    job: Job | None = None
    sampler: Any = None  # llama.cpp's chain, for what Drawer does not do
    drawer: draw.Drawer | None = None
    last_used: float = 0.0


class BatchEngine(JobQueue):
    name = "llama.cpp (batched)"

    def __init__(
        self, model: Path, settings: LoadSettings | None = None, parallel: int = 1, sample_threads: int | None = None
    ) -> None:
        """`sample_threads`: threads that sample the slots of a step side by side
        (default: one per slot, up to the logical CPUs; 1 samples them in turn)."""
        if parallel < 1:
            raise EngineError(f"parallel must be at least 1, not {parallel}")
        self.parallel = parallel
        self.llm, self.settings = open_llama(model, settings or LoadSettings(), n_seq_max=parallel)
        self.placement = self.settings.placement()
        self._lib = llama_binding.load().llama_cpp
        self.context_length = int(self.llm.n_ctx()) // parallel  # per sequence
        self.n_batch = int(self.llm.n_batch)
        self.n_vocab = int(self.llm.n_vocab())
        self.last_timings = Timings()
        self._ctx = self.llm.ctx
        self._memory = self._lib.llama_get_memory(self._ctx)
        self._batch = self._lib.llama_batch_init(self.n_batch, 0, 1)
        self._slots = [_Slot(seq) for seq in range(parallel)]
        self._waiting: list[Job] = []
        self._cond = threading.Condition()
        self._closing = False
        self.steps = 0  # decode calls, for tests and metrics
        self.batched_tokens = 0  # tokens decoded in steps that served more than one sequence
        workers = sample_threads or min(parallel, llama_threads.logical_cpus())
        self._samplers = (
            concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="edgeoss-sample") if workers > 1 else None
        )
        self._thread = threading.Thread(target=self._run, name="edgeoss-decode", daemon=True)
        self._thread.start()
        if self.settings.workers:
            rpc.on_abort(self._worker_lost)

    # ---------------------------------------------------------------- the contract

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
        """Queue a generation; `emit` gets its tokens on the decode thread."""
        job = Job.new(
            prompt,
            sampling,
            emit,
            stop,
            cancel,
            logits_processor,
            timings,
            self.context_length,
            f" per sequence ({self.parallel} sequences)" if self.parallel > 1 else "",
        )
        job.started = time.perf_counter()
        job.timings.prompt_tokens = len(prompt)
        job.timings.stop_reason = "length"
        return self._enqueue(job)

    def busy(self) -> int:
        """Sequences being decoded or waiting for a slot."""
        with self._cond:
            return len(self._waiting) + sum(1 for s in self._slots if s.job is not None)

    def _worker_lost(self, message: str) -> None:
        """llama.cpp lost a worker (rpc.on_abort): the decode thread is parked inside
        llama_decode for good, so every job ends here with the reason, and new ones are refused."""
        gone = rpc.lost(self.settings.workers)
        broken = (
            f"the worker at {', '.join(gone)} was lost mid-run ({message}); this server cannot use the model again: "
            "restart edgeoss serve once the worker is back (llama.cpp cannot reconnect within a process)"
        )
        with self._cond:
            self.broken, self.lost_workers = broken, gone
            jobs = [*self._waiting, *(s.job for s in self._slots if s.job is not None)]
            self._waiting.clear()
        for job in jobs:
            self._finish(job, "error", EngineError(broken))

    def close(self) -> None:
        with self._cond:
            if self._closing:
                return
            self._closing = True
            self._cond.notify()
        if self.broken:
            rpc.forget(self._worker_lost)
            return  # the decode thread will never return from llama.cpp: nothing here can be freed
        self._thread.join()
        if self._samplers is not None:
            self._samplers.shutdown()
        for slot in self._slots:
            self._free_sampler(slot)
        self._lib.llama_batch_free(self._batch)
        if self.settings.workers:
            rpc.forget(self._worker_lost)
        self.llm.close()

    # ---------------------------------------------------------------- the decode thread

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closing and not self._waiting and not any(s.job for s in self._slots):
                    self._cond.wait()
                if self._closing:
                    for job in [*self._waiting, *(s.job for s in self._slots if s.job)]:
                        self._finish(job, "cancel", EngineError("the engine was closed"))
                    return
                self._admit()
            try:
                self._step()
            except Exception as exc:  # never let the thread die with requests waiting on it
                log.exception("decode step failed")
                for slot in self._slots:
                    if slot.job is not None:
                        self._end(slot, "error", EngineError(f"llama.cpp failed: {exc}"))
                        slot.history = []
                        self._lib.llama_memory_seq_rm(self._memory, slot.seq, -1, -1)

    def _admit(self) -> None:
        while self._waiting:
            free = [s for s in self._slots if s.job is None]
            if not free:
                return
            job = self._waiting.pop(0)
            if job.cancel.is_set():
                self._finish(job, "cancel")
                continue
            slot = max(free, key=lambda s: (common_prefix(s.history, job.prompt), -s.last_used))
            prefix = reusable_prefix(slot.history, job.prompt)
            if prefix > 0 and not sliding_cache_holds(self.llm, slot.seq, prefix):
                prefix = 0
            if not self._lib.llama_memory_seq_rm(self._memory, slot.seq, prefix, -1):
                prefix = 0
                self._lib.llama_memory_seq_rm(self._memory, slot.seq, -1, -1)
            slot.history = slot.history[:prefix]
            slot.job = job
            job.pending = job.prompt[prefix:]
            job.timings.cached_tokens = prefix
            self._free_sampler(slot)
            if draw.plain(job.sampling):
                slot.drawer = draw.Drawer(self.n_vocab, job.sampling)
            else:
                slot.drawer = None
                slot.sampler = self._make_sampler(job.sampling)

    def _step(self) -> None:
        active = [s for s in self._slots if s.job is not None]
        for slot in active:
            assert slot.job is not None
            if slot.job.cancel.is_set():
                self._end(slot, "cancel")
        active = [s for s in active if s.job is not None]
        if not active:
            return
        # Sequences that are generating go first (one token each, for steady
        # streams); prompts fill what is left of the batch.
        plan: list[tuple[_Slot, list[int], bool]] = []
        room = self.n_batch
        for slot in sorted(active, key=lambda s: len(s.job.pending) if s.job else 0):
            job = slot.job
            assert job is not None
            take = job.pending[:room]
            if not take:
                continue
            room -= len(take)
            plan.append((slot, take, len(take) == len(job.pending)))
            if room == 0:
                break
        batch = self._batch
        n = 0
        outputs: list[tuple[_Slot, int]] = []
        for slot, take, last in plan:
            pos = len(slot.history)
            for i, token in enumerate(take):
                batch.token[n] = token
                batch.pos[n] = pos + i
                batch.n_seq_id[n] = 1
                batch.seq_id[n][0] = slot.seq
                batch.logits[n] = last and i == len(take) - 1
                n += 1
            if last:
                outputs.append((slot, n - 1))
        batch.n_tokens = n
        rc = self._lib.llama_decode(self._ctx, batch)
        if rc != 0:
            raise RuntimeError(f"llama_decode returned {rc}")
        self.steps += 1
        if len(plan) > 1:
            self.batched_tokens += n
        for slot, take, _ in plan:
            slot.history.extend(take)
            assert slot.job is not None
            del slot.job.pending[: len(take)]
        ready = [(slot, index, logits) for slot, index in outputs if (logits := self._prepare(slot, index)) is not None]
        if len(ready) > 1 and self._samplers is not None:
            # Each slot's draw reads the whole vocabulary (201k logits); NumPy and
            # llama.cpp release the GIL for it, so the slots of a step draw side
            # by side, not one after another.
            tokens = list(self._samplers.map(lambda r: self._draw(*r), ready))
        else:
            tokens = [self._draw(slot, index, logits) for slot, index, logits in ready]
        for (slot, _, _), token in zip(ready, tokens, strict=True):
            self._deliver(slot, token)

    def _prepare(self, slot: _Slot, index: int) -> npt.NDArray[np.float32] | None:
        """Before sampling, on the decode thread: a cancelled job ends (None: nothing
        to draw), a logits processor (Python: it needs the GIL anyway) edits the logits."""
        job = slot.job
        assert job is not None
        if job.cancel.is_set():
            self._end(slot, "cancel")
            return None
        # Also the first read of this output's logits: llama.cpp may reorder its
        # outputs on that read, which must not happen on two threads at once.
        logits = np.ctypeslib.as_array(self._lib.llama_get_logits_ith(self._ctx, index), shape=(self.n_vocab,))
        if job.logits_processor is not None:
            changed = job.logits_processor(np.asarray(slot.history, dtype=np.intc), logits)
            if changed is not logits:
                logits[:] = changed
        return logits

    def _draw(self, slot: _Slot, index: int, logits: npt.NDArray[np.float32]) -> int:
        """One token for this slot, by its own drawer or sampler chain (safe beside other slots' draws)."""
        if slot.drawer is not None:
            return slot.drawer.draw(logits)
        return int(self._lib.llama_sampler_sample(slot.sampler, self._ctx, index))

    def _deliver(self, slot: _Slot, token: int) -> None:
        job = slot.job
        assert job is not None
        job.timings.token(time.perf_counter() - job.started)
        job.emit(token)
        if token in job.stop:
            self._end(slot, "stop")
        elif job.timings.generated_tokens >= job.budget:
            self._end(slot, "length")
        else:
            job.pending = [token]
            sampled(job.logits_processor, token)

    # ---------------------------------------------------------------- helpers

    def _end(self, slot: _Slot, reason: str, error: BaseException | None = None) -> None:
        job = slot.job
        slot.job = None
        slot.last_used = time.monotonic()
        if job is not None:
            self._finish(job, reason, error)

    def _finish(self, job: Job, reason: str, error: BaseException | None = None) -> None:
        if job.done:
            return
        job.done = True
        job.timings.stop_reason = reason
        try:
            job.emit(error)
        except Exception:  # a consumer that went away must not stop the others
            log.exception("delivering the end of a generation failed")

    def _make_sampler(self, sampling: Sampling) -> Any:
        lib = self._lib
        chain = lib.llama_sampler_chain_init(lib.llama_sampler_chain_default_params())
        add = lib.llama_sampler_chain_add
        if (sampling.repeat_penalty, sampling.frequency_penalty, sampling.presence_penalty) != (1.0, 0.0, 0.0):
            add(
                chain,
                lib.llama_sampler_init_penalties(
                    _PENALTY_LAST_N, sampling.repeat_penalty, sampling.frequency_penalty, sampling.presence_penalty
                ),
            )
        if sampling.temperature <= 0:
            add(chain, lib.llama_sampler_init_greedy())
            return chain
        if sampling.top_k > 0:
            add(chain, lib.llama_sampler_init_top_k(sampling.top_k))
        if sampling.top_p < 1.0:
            add(chain, lib.llama_sampler_init_top_p(sampling.top_p, 1))
        if sampling.min_p > 0.0:
            add(chain, lib.llama_sampler_init_min_p(sampling.min_p, 1))
        add(chain, lib.llama_sampler_init_temp(sampling.temperature))
        seed = sampling.seed if sampling.seed is not None else lib.LLAMA_DEFAULT_SEED
        add(chain, lib.llama_sampler_init_dist(ctypes.c_uint32(seed & 0xFFFFFFFF).value))
        return chain

    def _free_sampler(self, slot: _Slot) -> None:
        if slot.sampler is not None:
            self._lib.llama_sampler_free(slot.sampler)
            slot.sampler = None
