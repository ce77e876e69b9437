"""How many CPU threads llama.cpp decodes with: measured once per machine and model.

llama-cpp-python's default is half the logical CPUs, which on a 2-core
machine is one thread: a third of the decode speed left unused. A decode
step is bound by memory bandwidth, which one thread per physical core
usually saturates; hyper-threads and efficiency cores can help or hurt,
and with the layers on a GPU fewer threads are often as good. So the
candidates (half the physical cores, the physical cores, the logical
CPUs) are each timed on a few real decode steps right after the first
load, and the fastest is kept per machine and model (edgeoss.remembered),
so later loads take it without measuring. Prompt evaluation is compute
bound and keeps every logical CPU.
"""

from __future__ import annotations

import logging
import statistics
import time
from typing import Any

import psutil

from edgeoss import remembered
from edgeoss.discover.load import QUIET_SHARE, OtherLoad
from edgeoss.engines.llamacpp import binding as llama_binding

log = logging.getLogger(__name__)

KIND = "llama-threads"
_STEPS = 4  # timed decode steps per candidate, after one untimed


def logical_cpus() -> int:
    return psutil.cpu_count(logical=True) or 1


def default_threads() -> int:
    """One thread per physical core (the logical count where that is unknown)."""
    return psutil.cpu_count(logical=False) or logical_cpus()


def candidates() -> list[int]:
    physical, logical = default_threads(), logical_cpus()
    return sorted({max(1, physical // 2), physical, logical})


def machine_key(model_key: str, placement: str) -> str:
    from edgeoss.discover.cpu import probe_cpu

    cpu = probe_cpu()
    return f"{cpu.name}|{cpu.cores_physical}|{cpu.cores_logical}|{placement}|{model_key}"


def remembered_threads(key: str) -> int | None:
    value = remembered.load(KIND, key)
    threads = value.get("threads") if value else None
    if isinstance(threads, int) and 1 <= threads <= logical_cpus():
        return threads
    return None


def _step_seconds(llm: Any, lib: Any, options: list[int]) -> dict[int, float]:
    """Median seconds of a one-token decode step with each thread count.

    The counts take turns step by step, so a burst of other work on the
    machine slows them alike instead of condemning whichever ran during it.
    """
    memory = lib.llama_get_memory(llm.ctx)
    batch = lib.llama_batch_init(1, 0, 1)
    times: dict[int, list[float]] = {n: [] for n in options}
    try:
        pos = 0
        for step in range(_STEPS + 1):
            for n in options:
                lib.llama_set_n_threads(llm.ctx, n, logical_cpus())
                batch.n_tokens = 1
                batch.token[0] = 0
                batch.pos[0] = pos
                batch.n_seq_id[0] = 1
                batch.seq_id[0][0] = 0
                batch.logits[0] = True  # the output matrix is part of every real step
                start = time.perf_counter()
                if lib.llama_decode(llm.ctx, batch) != 0:
                    raise RuntimeError("llama_decode failed while timing threads")
                if step:  # the first step of each count warms its threads up
                    times[n].append(time.perf_counter() - start)
                pos += 1
        return {n: statistics.median(t) for n, t in times.items()}
    finally:
        lib.llama_batch_free(batch)
        lib.llama_memory_clear(memory, True)


def tune(llm: Any, key: str) -> int:
    """The fastest decode thread count for this loaded model, measured now (and
    remembered under `key`), or the remembered one. Leaves `llm` set to it,
    with its KV cache empty."""
    lib = llama_binding.load()
    known = remembered_threads(key)
    options = candidates()
    if known is not None or len(options) == 1:
        chosen = known if known is not None else options[0]
        lib.llama_set_n_threads(llm.ctx, chosen, logical_cpus())
        return chosen
    with OtherLoad() as load:
        timed = _step_seconds(llm, lib, options)
    chosen = min(timed, key=lambda n: timed[n])
    lib.llama_set_n_threads(llm.ctx, chosen, logical_cpus())
    shown = ", ".join(f"{n}: {s * 1000:.1f} ms" for n, s in timed.items())
    if load.share > QUIET_SHARE:
        # Other programs were busy: right for now, but not a fact about the machine.
        log.info(
            "decode threads: %d for now (a step with %s; other programs used %.0f%% of the CPUs, so "
            "it is timed again next time)",
            chosen,
            shown,
            load.share * 100,
        )
        return chosen
    log.info("decode threads: %d (a step with %s)", chosen, shown)
    remembered.save(KIND, key, {"threads": chosen, "step_ms": {str(n): round(s * 1000, 2) for n, s in timed.items()}})
    return chosen
