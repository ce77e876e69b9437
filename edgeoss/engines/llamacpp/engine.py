"""The llama.cpp engine (llama-cpp-python), applying a plan.

It loads only files that pass edgeoss's verifier (llama.cpp aborts the
process on some malformed files), routes llama.cpp's log into edgeoss's log
instead of stderr, and reuses the KV cache when a prompt extends the previous
one: only the new tokens are evaluated.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeoss import constants, thread_stderr
from edgeoss.engines.base import LoadSettings, LogitsProcessor, Sampling, Timings, check_prompt, reusable_prefix
from edgeoss.engines.llamacpp import binding as llama_binding
from edgeoss.engines.llamacpp import rpc
from edgeoss.engines.llamacpp import threads as llama_threads
from edgeoss.engines.llamacpp.placement import experts_on_cpu, sequences, unsupported_reason
from edgeoss.errors import EngineError, WorkerError
from edgeoss.weights.gguf import verified

if TYPE_CHECKING:
    import llama_cpp as llama_cpp_types

log = logging.getLogger(__name__)
llama_log = logging.getLogger("edgeoss.llama_cpp")


# llama.cpp's ggml_log_level: 1 debug, 2 info, 3 warn, 4 error, 5 cont
_LEVELS = {1: logging.DEBUG, 2: logging.DEBUG, 3: logging.WARNING, 4: logging.ERROR, 5: logging.DEBUG}
_callback_ref: Any = None
# Warnings llama.cpp gives for every gpt-oss GGUF (it re-types harmony's special
# tokens and picks its end-of-generation ids): expected, so kept to the log file.
_EXPECTED_WARNINGS = ("load: setting token", "load: special_eog_ids contains both")


def route_llama_log() -> None:
    """Send llama.cpp's log lines to the `edgeoss.llama_cpp` logger (once per process)."""
    global _callback_ref
    if _callback_ref is not None:
        return
    llama_cpp = llama_binding.load()
    # A GPU backend with a device, not llama_supports_gpu_offload(): that is true for every
    # build with RPC (a worker's device counts as a GPU), which would leave llama.cpp's chatter
    # on the terminal of every CPU machine.
    if any(device.kind != "CPU" for device in rpc.local_devices()):
        # Seen on an H100 with a CUDA build of 0.3.36: with a Python log callback
        # the model load segfaulted. That was before llama_binding fixed the
        # libstdc++ load order, the likely cause, but it has not been re-tested
        # since; until it is, GPU builds keep llama.cpp's own stderr.
        log.info("llama.cpp log routing is off for GPU builds; its messages go to stderr")
        _callback_ref = False
        return

    @llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]
    def forward(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        message = text.decode("utf-8", "replace").rstrip()
        if message:
            benign = message.startswith(_EXPECTED_WARNINGS)
            llama_log.log(logging.DEBUG if benign else _LEVELS.get(level, logging.DEBUG), "%s", message)

    _callback_ref = forward  # keep it alive: llama.cpp holds only the pointer
    llama_cpp.llama_log_set(forward, ctypes.c_void_p(0))


def sliding_cache_holds(llm: Any, seq: int, prefix: int) -> bool:
    """Whether the KV cache of sequence `seq` still holds what the token at
    position `prefix` attends to.

    gpt-oss's sliding-window layers keep only about window + micro-batch
    positions per sequence; after a long reply the start of the prompt is gone
    from them, and evaluating after a reused prefix would silently attend to
    missing entries. The rule is llama-server's: the oldest position held must
    be no later than prefix - window.
    """
    llama_cpp = llama_binding.load()
    n_swa = int(llama_cpp.llama_model_n_swa(llm.model))
    if n_swa <= 0:
        return True
    pos_min = int(llama_cpp.llama_memory_seq_pos_min(llama_cpp.llama_get_memory(llm.ctx), seq))
    return 0 <= pos_min <= max(0, prefix - n_swa)


def _pool_devices(s: LoadSettings) -> tuple[list[int], list[float]]:
    """The devices and layer split of a pooled placement (planning/pool.py): each worker is
    asked first (llama.cpp would end the process on one it cannot reach), then connected."""
    if not s.pool:
        return [], []
    from edgeoss.cluster import protocol

    local = {d.name: d.handle for d in rpc.local_devices()}
    for endpoint in s.workers:
        protocol.probe(endpoint)  # a WorkerError with the fix, before llama.cpp connects
    handles: list[int] = []
    for device, _ in s.pool:
        endpoint, _, index = device.rpartition("#")
        if endpoint:
            remote = rpc.remote_devices(endpoint)
            if int(index) >= len(remote):
                raise EngineError(f"the worker at {endpoint} has no device {index}", hint="plan again")
            handles.append(remote[int(index)])
        elif device in local:
            handles.append(local[device])
        else:
            raise EngineError(f"no device named {device} here", hint=f"the devices here: {', '.join(local)}")
    return handles, [float(n) for _, n in s.pool]


def open_llama(
    model: Path, settings: LoadSettings, n_seq_max: int = 1, while_loading: Callable[[], object] | None = None
) -> tuple[Any, LoadSettings]:
    """Verify `model` and load it with llama.cpp as `settings` say; return the
    llama_cpp.Llama and the settings really applied. `n_seq_max` > 1 gives one
    context whose KV cache holds that many sequences (for batched decoding)."""
    llama_cpp = llama_binding.load()
    report = verified.verify(model)
    if not report.ok:
        raise EngineError(f"refusing to load {model.name}: {report.summary()}", hint=f"edgeoss verify {model}")
    route_llama_log()
    s = settings
    if s.threads is None and (asked := constants.threads()) is not None:
        s = replace(s, threads=asked)
    if s.n_cpu_moe_layers > 0 and (why := unsupported_reason()) is not None:
        # Whole layers on the CPU take at least as much off the GPU as their experts alone.
        whole = min(s.n_cpu_moe_layers, s.n_gpu_layers)
        log.warning(
            "this llama-cpp-python cannot keep MoE experts on the CPU (%s): %d whole layers stay on the CPU "
            "instead, which is slower than keeping only their experts there",
            why,
            whole,
        )
        s = replace(s, n_gpu_layers=s.n_gpu_layers - whole, n_cpu_moe_layers=0)
    log.info(
        "loading %s: ctx %d, %d GPU layers, experts of %d layers on the CPU, flash attention %s, %d sequences",
        model.name,
        s.context_length,
        s.n_gpu_layers,
        s.n_cpu_moe_layers,
        s.flash_attention,
        n_seq_max,
    )
    if while_loading is not None:
        while_loading()
    devices, split = _pool_devices(s)
    said = None
    try:
        # verbose=True also prints the GGUF's metadata and chat template with
        # Python's print(file=sys.stderr): hundreds of lines, kept for the log.
        # Captured for this thread only: the server's other threads keep the real stderr.
        with (
            experts_on_cpu(s.n_cpu_moe_layers),
            sequences(n_seq_max),
            rpc.placed_on(devices, split),
            thread_stderr.captured() as said,
        ):
            llm = llama_cpp.Llama(
                model_path=str(model),
                n_ctx=s.context_length,
                n_batch=s.n_ubatch,
                n_ubatch=s.n_ubatch,
                n_gpu_layers=s.n_gpu_layers,
                flash_attn=s.flash_attention,
                swa_full=s.swa_full,
                use_mmap=s.use_mmap,
                n_threads=s.threads or llama_threads.default_threads(),
                # verbose=False makes llama-cpp-python redirect the process's
                # stdout/stderr around the load; a CUDA build on an H100 segfaulted
                # that way before the libstdc++ fix (llama_binding) and was not
                # re-tested since. CPU builds route the log to our logger.
                verbose=True,
            )
    except (ValueError, RuntimeError) as exc:
        raise EngineError(f"llama.cpp could not load {model.name}: {exc}") from exc
    finally:
        if said is not None and said.getvalue():
            llama_log.debug("%s", said.getvalue().rstrip())
    if s.threads is None:
        key = llama_threads.machine_key(_model_key(llm, model), replace(s, threads=None).placement())
        try:
            s = replace(s, threads=llama_threads.tune(llm, key))
        except RuntimeError as exc:  # timing is an optimisation: keep the default
            log.warning("could not time the decode thread counts: %s", exc)
            s = replace(s, threads=llama_threads.default_threads())
        llm.n_threads = s.threads
    return llm, s


def _model_key(llm: Any, model: Path) -> str:
    """What the best thread count depends on: the model's shape and size, not its name."""
    llama_cpp = llama_binding.load()
    desc = ctypes.create_string_buffer(256)
    llama_cpp.llama_model_desc(llm.model, desc, len(desc))
    return f"{desc.value.decode('utf-8', 'replace')}|{model.stat().st_size}"


class LlamaCppEngine:
    name = "llama.cpp"

    def __init__(
        self, model: Path, settings: LoadSettings | None = None, while_loading: Callable[[], object] | None = None
    ) -> None:
        self.llm: llama_cpp_types.Llama
        self.llm, self.settings = open_llama(model, settings or LoadSettings(), while_loading=while_loading)
        self.placement = self.settings.placement()
        self.context_length = int(self.llm.n_ctx())
        self.last_timings = Timings()
        self._lock = threading.Lock()
        if self.settings.workers:
            rpc.on_abort(self._worker_lost)

    def _worker_lost(self, message: str) -> None:
        """llama.cpp lost a worker while this process (run, chat) decoded in its own thread:
        that thread cannot come back, so the process ends here, saying why, with WorkerError's code."""
        gone = ", ".join(rpc.lost(self.settings.workers))
        text = f"\nerror: the worker at {gone} was lost mid-run ({message})\n{rpc.LOST_HINT}\n"
        os.write(2, text.encode())  # not sys.stderr: a load may have it captured for its thread
        os._exit(WorkerError.exit_code)

    def _reuse_prefix(self, prompt: Sequence[int]) -> int:
        """Keep the KV cache of the longest common prefix with the last sequence;
        return how many prompt tokens need no evaluation."""
        llm = self.llm
        cached = list(llm.input_ids[: llm.n_tokens])
        prefix = reusable_prefix(cached, prompt)
        if prefix > 0 and not sliding_cache_holds(llm, 0, prefix):
            log.debug("prefix of %d tokens not reused: the sliding-window cache no longer holds its end", prefix)
            prefix = 0
        if prefix > 0 and llm._ctx.kv_cache_seq_rm(-1, prefix, -1):
            llm.n_tokens = prefix
            return prefix
        llm.reset()  # type: ignore[no-untyped-call]
        llm._ctx.kv_cache_clear()  # type: ignore[no-untyped-call]
        return 0

    def generate(
        self,
        prompt: Sequence[int],
        sampling: Sampling,
        stop: Collection[int] = (),
        cancel: threading.Event | None = None,
        logits_processor: LogitsProcessor | None = None,
        timings: Timings | None = None,
    ) -> Iterator[int]:
        llama_cpp = llama_binding.load()
        room = check_prompt(prompt, self.context_length)
        with self._lock:  # one sequence at a time: the context holds one KV cache
            llm = self.llm
            timings = timings if timings is not None else Timings()
            timings.prompt_tokens = len(prompt)
            self.last_timings = timings
            start = time.perf_counter()
            timings.cached_tokens = self._reuse_prefix(prompt)
            if sampling.seed is not None:
                llm.set_seed(sampling.seed)
            processors = llama_cpp.LogitsProcessorList([logits_processor]) if logits_processor else None
            budget = min(sampling.max_tokens, room)
            timings.stop_reason = "length"
            for token in llm.generate(
                list(prompt[timings.cached_tokens :]),
                top_k=sampling.top_k,
                top_p=sampling.top_p,
                min_p=sampling.min_p,
                temp=sampling.temperature,
                repeat_penalty=sampling.repeat_penalty,
                frequency_penalty=sampling.frequency_penalty,
                presence_penalty=sampling.presence_penalty,
                reset=False,
                logits_processor=processors,
            ):
                timings.token(time.perf_counter() - start)
                yield token
                if token in stop:
                    timings.stop_reason = "stop"
                    break
                if cancel is not None and cancel.is_set():
                    timings.stop_reason = "cancel"
                    break
                if timings.generated_tokens >= budget:
                    break

    def close(self) -> None:
        self.llm.close()
