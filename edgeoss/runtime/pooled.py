"""`--workers`: ask each worker what it offers, plan a GGUF across this machine and
them (planning/pool.py), and turn the plan into llama.cpp's load settings."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from edgeoss import spec
from edgeoss.cluster import protocol
from edgeoss.cluster.protocol import WorkerProfile
from edgeoss.engines.base import LoadSettings
from edgeoss.errors import UsageError, WorkerError
from edgeoss.planning import pool
from edgeoss.planning.memory import Weights

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


def ram_available() -> int:
    import psutil

    return int(psutil.virtual_memory().available)


def plan_for(path: Path, endpoints: Sequence[str], ctx: int | None) -> pool.PoolPlan:
    hp, weights = hparams_of(path)
    contexts = (ctx,) if ctx else tuple(c for c in CONTEXTS if c <= hp.context_length) or (CONTEXTS[-1],)
    return pool.plan_pool(hp, weights, ram_available(), local_gpus(), profiles(endpoints), contexts)


def settings_for(settings: LoadSettings, path: Path, endpoints: Sequence[str], ctx: int | None) -> LoadSettings:
    """`settings` placed across this machine and the workers; a WorkerError when it cannot be."""
    plan = plan_for(path, endpoints, ctx)
    if not plan.fits:
        raise WorkerError(plan.reasons[0], hint=plan.reasons[1] if len(plan.reasons) > 1 else None)
    for reason in plan.reasons:
        log.info("workers: %s", reason)
    return replace(
        settings,
        pool=tuple((s.place.device, s.layers) for s in plan.devices),
        n_gpu_layers=plan.n_gpu_layers,
        n_cpu_moe_layers=0,
        context_length=ctx or plan.context_length,
    )
