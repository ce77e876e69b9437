"""The server's queued contract (submit / busy / close) for an engine that
decodes one sequence at a time through generate().

The server hands every request to `submit` with a callback; this runs the
requests one after another on one worker thread, in arrival order, and
passes each token (then None, or the exception that ended it) to the
request's callback. The batched llama.cpp engine has this contract
natively; onnxruntime-genai's generator holds one KV cache, so its engine
goes through here.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Collection, Sequence

from edgeoss.engines.base import (
    Emit,
    Engine,
    Job,
    JobQueue,
    LogitsProcessor,
    Sampling,
    Timings,
)
from edgeoss.errors import EngineError


class SerialEngine(JobQueue):
    parallel = 1

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.name = engine.name
        self.placement = engine.placement
        self.context_length = engine.context_length
        self.last_timings = Timings()
        self._waiting: deque[Job] = deque()
        self._running: Job | None = None
        self._cond = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="edgeoss-serial-decode", daemon=True)
        self._thread.start()

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
        """Queue a generation; `emit` gets its tokens on the worker thread."""
        return self._enqueue(
            Job.new(prompt, sampling, emit, stop, cancel, logits_processor, timings, self.context_length)
        )

    def busy(self) -> int:
        """Sequences being decoded or waiting."""
        with self._cond:
            return len(self._waiting) + (self._running is not None)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._waiting and not self._closing:
                    self._cond.wait()
                if self._closing:
                    break
                job = self._waiting.popleft()
                self._running = job
            self._decode(job)
            with self._cond:
                self._running = None
        with self._cond:
            left, self._waiting = list(self._waiting), deque()
        for job in left:
            job.emit(EngineError("the engine was closed"))

    def _decode(self, job: Job) -> None:
        if job.cancel.is_set():  # the client left while it waited
            job.timings.stop_reason = "cancel"
            job.emit(None)
            return
        try:
            for token in self.engine.generate(
                job.prompt, job.sampling, job.stop, job.cancel, job.logits_processor, job.timings
            ):
                job.emit(token)
        except Exception as exc:  # the caller gets it; the worker keeps serving
            job.emit(exc if isinstance(exc, EngineError) else EngineError(f"{self.name} failed: {exc}"))
            return
        job.emit(None)

    def close(self) -> None:
        with self._cond:
            if self._closing:
                return
            self._closing = True
            self._cond.notify()
        running = self._running
        if running is not None:
            running.cancel.set()
        self._thread.join()
        self.engine.close()
