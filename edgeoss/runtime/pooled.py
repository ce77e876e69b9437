"""`--workers`: ask each worker what it offers, plan a GGUF across this machine and
them (planning/pool.py), and turn the plan into llama.cpp's load settings."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeoss import constants, spec
from edgeoss.backends import LLAMA_CPP
from edgeoss.cluster import protocol
from edgeoss.cluster.protocol import WorkerProfile
from edgeoss.engines.base import LoadSettings
from edgeoss.errors import UsageError, WorkerError
from edgeoss.planning import pool
from edgeoss.planning.memory import Weights

if TYPE_CHECKING:
    from edgeoss.discover.hardware import HardwareReport
    from edgeoss.runtime.choose import Chosen

log = logging.getLogger(__name__)

CONTEXTS = (131072, 65536, 32768, 16384, 8192, 4096)


def parse_workers(text: str | None) -> tuple[str, ...]:
    """HOST:PORT[,HOST:PORT...], each checked for shape (not yet reached)."""
    if not text:
        return ()
    endpoints = tuple(dict.fromkeys(e.strip() for e in text.split(",") if e.strip()))
    for endpoint in endpoints:
        protocol.split_endpoint(endpoint)
    if len(endpoints) > protocol.MAX_DEVICES:
        raise UsageError(f"{len(endpoints)} workers; llama.cpp takes {protocol.MAX_DEVICES} at most")
    return endpoints


def profiles(endpoints: Sequence[str]) -> list[WorkerProfile]:
    """Each worker asked in turn; the first that cannot be used is a WorkerError with its fix."""
    from edgeoss.engines.llamacpp import rpc

    rpc.require()
    return [protocol.probe(e) for e in endpoints]


def hparams_of(path: Path) -> tuple[spec.Hparams, Weights]:
    """The shape and the per-layer bytes of a GGUF, from its header."""
    from edgeoss.weights.gguf.reader import read_model

    model = read_model(path)
    md = model.metadata
    values = {
        attribute: md[f"{spec.GGUF_ARCH}.{key}"]
        for key, (attribute, _) in spec.GGUF_HPARAM_KEYS.items()
        if f"{spec.GGUF_ARCH}.{key}" in md
    }
    embd = model.tensors.get("token_embd.weight")
    vocab = embd.shape[0] if embd is not None else spec.VOCAB_SIZE
    shaped = spec.Hparams(name="gguf", vocab_size=vocab, **values)
    name = next((v.name for v in spec.VARIANTS.values() if v.num_layers == shaped.num_layers), path.name)
    return replace(shaped, name=name), Weights.from_gguf(model)


def local_gpus() -> list[tuple[str, str, int]]:
    """This machine's accelerators as llama.cpp sees them: (device, description, free bytes)."""
    from edgeoss.engines.llamacpp import rpc

    return [(d.name, d.description, d.free_bytes) for d in rpc.local_devices() if d.kind != "CPU"]


def ram_budget() -> int:
    """What this machine's RAM can give the model now (planning/pool.py's ram_budget)."""
    import psutil

    return pool.ram_budget(int(psutil.virtual_memory().available), constants.local_memory())


def plan_for(path: Path, endpoints: Sequence[str], ctx: int | None) -> pool.PoolPlan:
    hp, weights = hparams_of(path)
    contexts = (ctx,) if ctx else tuple(c for c in CONTEXTS if c <= hp.context_length) or (CONTEXTS[-1],)
    return pool.plan_pool(hp, weights, ram_budget(), local_gpus(), profiles(endpoints), contexts)


def settings_for(settings: LoadSettings, path: Path, endpoints: Sequence[str], ctx: int | None) -> LoadSettings:
    """`settings` placed across this machine and the workers; a WorkerError when it cannot be."""
    plan = plan_for(path, endpoints, ctx)
    if not plan.fits:
        raise WorkerError(plan.reasons[0], hint=plan.reasons[1] if len(plan.reasons) > 1 else None)
    for reason in plan.reasons:
        log.info("workers: %s", reason)
    if not plan.uses_workers:
        return settings  # this machine holds it: its own plan stands
    return replace(
        settings,
        pool=tuple(plan.devices),
        n_gpu_layers=plan.n_gpu_layers,
        n_cpu_moe_layers=0,
        context_length=ctx or plan.context_length,
    )


def chosen_with_workers(chosen: Chosen, endpoints: Sequence[str], ctx: int | None) -> Chosen:
    """`chosen` placed across this machine and the workers (`--workers`); unchanged without them."""
    if not endpoints:
        return chosen
    if chosen.engine is not LLAMA_CPP:
        raise UsageError(f"--workers needs a GGUF model (llama.cpp); {chosen.name} runs on {chosen.engine.label}")
    return replace(chosen, settings=settings_for(chosen.settings, chosen.path, endpoints, ctx))


@dataclass
class WorkerState:
    """A worker as `plan` and `doctor` report it: what it offers, or why it cannot be used."""

    endpoint: str
    profile: WorkerProfile | None = None
    error: str = ""
    fix: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "state": "ready" if self.profile is not None else "unusable",
            "profile": self.profile.to_dict() if self.profile is not None else None,
            "error": self.error,
            "fix": self.fix,
        }

    def describe(self) -> str:
        if self.profile is None:
            return self.error
        p = self.profile
        devices = ", ".join(f"device {d.index}: {pool.gib(pool.device_budget(d.free_bytes))}" for d in p.devices)
        return (
            f"llama.cpp RPC protocol {protocol.version_text(p.protocol)}, {devices} usable, "
            f"round trip {p.rtt_s * 1000:.2f} ms"
        )


def survey(endpoints: Sequence[str]) -> list[WorkerState]:
    """Each worker asked; one that cannot be used is reported with its fix, not raised."""
    states = []
    for endpoint in endpoints:
        try:
            states.append(WorkerState(endpoint, protocol.probe(endpoint)))
        except WorkerError as exc:
            states.append(WorkerState(endpoint, error=exc.message, fix=exc.hint or ""))
    return states


def report_gpus(report: HardwareReport) -> list[tuple[str, str, int]]:
    """A hardware report's NVIDIA GPUs as llama.cpp names them (CUDA0, ...), with their free memory.
    Unified memory (Apple) is counted as RAM."""
    nvidia = [g for g in report.gpus if g.vendor == "nvidia" and g.memory_free_bytes]
    return [(f"CUDA{i}", g.name, int(g.memory_free_bytes or 0)) for i, g in enumerate(nvidia)]


def plan_variants(
    report: HardwareReport, workers: Sequence[WorkerProfile], variant: str | None, ctx: int | None
) -> pool.PoolPlan:
    """The largest gpt-oss (or `variant`) across the machine of `report` and `workers`, as
    published (MXFP4 experts, Q8_0 matrices): the first that fits, else why the smallest does not."""
    names = [f"gpt-oss-{variant.removeprefix('gpt-oss-')}"] if variant else ["gpt-oss-120b", "gpt-oss-20b"]
    ram = pool.ram_budget(report.ram_available_bytes or report.ram_total_bytes or 0, constants.local_memory())
    result: pool.PoolPlan | None = None
    for name in names:
        hp = spec.VARIANTS[name]
        contexts = (ctx,) if ctx else tuple(c for c in CONTEXTS if c <= hp.context_length)
        result = pool.plan_pool(hp, Weights.estimate(hp), ram, report_gpus(report), list(workers), contexts)
        if result.fits:
            return result
    assert result is not None
    return result


def placement_note(settings: LoadSettings, name: str) -> str:
    """What --workers did, in one line for the terminal."""
    if not settings.pool:
        return f"workers: not needed, {name} fits on this machine alone"
    return f"workers: {settings.placement()}"
