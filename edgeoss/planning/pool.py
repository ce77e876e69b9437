"""A model across this machine and its workers (llama.cpp's RPC): which layers go
where, whether it fits at all, and what the network costs.

How llama.cpp places layers with devices given (split by layer): the first
layers stay on the CPU (with the token embedding), the last `n_gpu_layers`
go to the devices in list order, each taking a run of layers in proportion
to its split. edgeoss keeps the output matrix on this machine too (it never
offloads more layers than the model has), so the 201k logits of each token
never cross the network; only the hidden state (2880 floats) does, once into
each machine and once back.

Order of preference: this machine's GPUs, then its RAM, then the workers,
largest offer first (fewest hops). A link is slow when its round trips alone
hold decoding under SLOW_LINK_TOKENS_PER_S: that pool is refused with the
numbers, not planned into a silent crawl.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from edgeoss import spec
from edgeoss.cluster.protocol import WorkerProfile
from edgeoss.planning import memory
from edgeoss.planning.memory import GIB, Weights

ROUND_TRIPS_PER_DEVICE = 3
"""Per decode step, each remote device: the graph, the hidden state in, the hidden state out
(ggml-rpc: GRAPH_COMPUTE, SET_TENSOR, GET_TENSOR); benchmarks/workers.py measures it."""
SLOW_LINK_TOKENS_PER_S = 2.0
"""Below this, from the network alone, a chat is not usable: the pool is refused."""
ASSUMED_LINK_BYTES_PER_S = 125e6
"""1 Gbit/s: what a wired home network gives; used only to say how long a load may take when
no transfer to the worker has been measured yet, and said so."""
RAM_MARGIN_FRACTION = 0.10
RAM_MARGIN_MIN = 1 * GIB
DEVICE_MARGIN = 512 * 1024 * 1024  # a worker's device: its own process, buffers' alignment


def gib(n: float) -> str:
    return f"{n / GIB:.1f} GiB"


@dataclass(frozen=True)
class Place:
    """Somewhere layers can go."""

    name: str  # as people read it
    kind: str  # "cpu" (this machine's RAM), "gpu" (this machine's), "worker"
    budget: int
    device: str = ""  # ggml's device name here (CUDA0), or ENDPOINT#INDEX of a worker's
    endpoint: str = ""
    rtt_s: float = 0.0
    link_bytes_per_s: float | None = None


@dataclass
class Share:
    place: Place
    first_layer: int
    layers: int
    bytes: int


@dataclass
class PoolPlan:
    fits: bool
    variant: str
    context_length: int
    shares: list[Share] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    network_s_per_token: float = 0.0
    over_link_bytes: dict[str, int] = field(default_factory=dict)  # endpoint -> weights sent at each load

    @property
    def devices(self) -> list[Share]:
        """The shares llama.cpp gets as devices (all but this machine's RAM), in order."""
        return [s for s in self.shares if s.place.kind != "cpu" and s.layers > 0]

    @property
    def n_gpu_layers(self) -> int:
        return sum(s.layers for s in self.devices)

    @property
    def uses_workers(self) -> bool:
        return any(s.place.kind == "worker" and s.layers for s in self.shares)

    def summary(self) -> str:
        parts = [f"{s.layers} on {s.place.name}" for s in self.shares if s.layers]
        return f"{self.variant} layers: " + ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["summary"] = self.summary() if self.fits else ""
        data["n_gpu_layers"] = self.n_gpu_layers
        return data


def places(ram_available: int, gpus: list[tuple[str, str, int]], workers: list[WorkerProfile]) -> list[Place]:
    """This machine's GPUs (device, name, free bytes), its RAM, then each worker's devices
    (the largest offer first)."""
    out = [
        Place(f"{name} (this machine)", "gpu", max(0, free - memory.CUDA_CONTEXT - DEVICE_MARGIN), device)
        for device, name, free in gpus
    ]
    margin = max(RAM_MARGIN_MIN, int(ram_available * RAM_MARGIN_FRACTION))
    out.append(Place("this machine's RAM", "cpu", max(0, ram_available - margin)))
    remote = [
        Place(
            f"{w.endpoint}" + (f" device {d.index}" if len(w.devices) > 1 else ""),
            "worker",
            max(0, d.free_bytes - DEVICE_MARGIN),
            f"{w.endpoint}#{d.index}",
            w.endpoint,
            w.rtt_s,
            w.link_bytes_per_s,
        )
        for w in workers
        for d in w.devices
    ]
    out.extend(sorted(remote, key=lambda p: -p.budget))
    return out


def _layer_bytes(hp: spec.Hparams, weights: Weights, context: int, layer: int) -> int:
    kv = memory.kv_cache_bytes(hp, context, layers=range(layer, layer + 1))
    return weights.dense_per_layer[layer] + weights.experts_per_layer[layer] + kv


def _device_overhead(hp: spec.Hparams) -> int:
    """A device's compute buffer for its run of layers (the experts' matmuls of one micro-batch)."""
    return memory.N_UBATCH * 4 * (hp.experts_per_token * hp.intermediate_size + 4 * hp.hidden_size)


def _host_bytes(hp: spec.Hparams, weights: Weights) -> int:
    """What stays on this machine whatever the split: embedding, output, logits, the process."""
    return weights.token_embd + weights.output + memory.compute_bytes(hp) + memory.PROCESS_OVERHEAD


def split(hp: spec.Hparams, weights: Weights, context: int, where: list[Place]) -> list[Share] | None:
    """Layers in llama.cpp's order (this machine's RAM takes the first ones, then the devices in
    turn), each place taking as many as fit, preferring this machine; None when they do not all fit."""
    per_layer = [_layer_bytes(hp, weights, context, i) for i in range(hp.num_layers)]
    budgets = {id(p): p.budget for p in where}
    cpu = next(p for p in where if p.kind == "cpu")
    budgets[id(cpu)] -= _host_bytes(hp, weights)
    if budgets[id(cpu)] < 0:
        return None
    # How many layers each place could hold, preferred places first (their order in `where`).
    counts: dict[int, int] = {}
    left = hp.num_layers
    for place in where:
        room = budgets[id(place)] - (0 if place.kind == "cpu" else _device_overhead(hp))
        n = 0
        # Layers differ only by their KV cache (sliding or full): size each place's run by the largest.
        while n < left and room >= max(per_layer) * (n + 1):
            n += 1
        counts[id(place)] = n
        left -= n
    if left > 0:
        return None
    # llama.cpp's order: the RAM's layers first, then the devices in the order given.
    ordered = [cpu, *(p for p in where if p.kind != "cpu")]
    shares, first = [], 0
    for place in ordered:
        n = counts[id(place)]
        layer_bytes = sum(per_layer[first : first + n])
        extra = _host_bytes(hp, weights) if place is cpu else (_device_overhead(hp) if n else 0)
        shares.append(Share(place, first, n, layer_bytes + extra))
        first += n
    return shares


def network_seconds(shares: list[Share], hp: spec.Hparams) -> float:
    """Per decode token: each remote device's round trips, and the hidden state in and out."""
    hidden = hp.hidden_size * 4
    total = 0.0
    for share in shares:
        if share.place.kind != "worker" or not share.layers:
            continue
        total += ROUND_TRIPS_PER_DEVICE * share.place.rtt_s
        if share.place.link_bytes_per_s:
            total += 2 * hidden / share.place.link_bytes_per_s
    return total


def plan_pool(
    hp: spec.Hparams,
    weights: Weights,
    ram_available: int,
    gpus: list[tuple[str, str, int]],
    workers: list[WorkerProfile],
    contexts: tuple[int, ...],
) -> PoolPlan:
    """The longest context of `contexts` at which the model fits across this machine and the
    workers; or a plan that does not fit, saying by how much, or which link is too slow."""
    where = places(ram_available, gpus, workers)
    for context in contexts:
        shares = split(hp, weights, context, where)
        if shares is None:
            continue
        result = PoolPlan(True, hp.name, context, shares)
        result.network_s_per_token = network_seconds(shares, hp)
        for share in shares:
            if share.place.kind == "worker" and share.layers:
                result.over_link_bytes[share.place.endpoint] = (
                    result.over_link_bytes.get(share.place.endpoint, 0) + share.bytes
                )
        _explain(result, hp, where)
        return result
    need = _host_bytes(hp, weights) + sum(_layer_bytes(hp, weights, contexts[-1], i) for i in range(hp.num_layers))
    have = sum(p.budget for p in where)
    listed = ", ".join(f"{p.name} {gib(p.budget)}" for p in where)
    return PoolPlan(
        False,
        hp.name,
        0,
        reasons=[
            f"{hp.name} needs about {gib(need)} at {contexts[-1]} tokens; this machine and its workers offer "
            f"{gib(have)} usable ({listed})",
            f"add {gib(max(0, need - have))} more: another worker, or a larger --mem on one",
        ],
    )


def _explain(result: PoolPlan, hp: spec.Hparams, where: list[Place]) -> None:
    reasons = result.reasons
    local = sum(s.layers for s in result.shares if s.place.kind != "worker")
    if not result.uses_workers:
        reasons.append(f"{hp.name} fits on this machine alone: the workers are not needed")
    else:
        reasons.append(
            f"{local} of {hp.num_layers} layers stay on this machine (its memory first); "
            f"{hp.num_layers - local} go to the workers"
        )
    for share in result.shares:
        if share.layers:
            span = f"layers {share.first_layer}-{share.first_layer + share.layers - 1}"
            reasons.append(f"{share.place.name}: {span}, {gib(share.bytes)} of {gib(share.place.budget)}")
    for endpoint, sent in result.over_link_bytes.items():
        place = next(p for p in where if p.endpoint == endpoint)
        if place.link_bytes_per_s:
            reasons.append(
                f"each load sends {gib(sent)} to {endpoint}: about {sent / place.link_bytes_per_s:.0f} s at the "
                f"measured {place.link_bytes_per_s / 1e6:.0f} MB/s"
            )
        else:
            reasons.append(
                f"each load sends {gib(sent)} to {endpoint}: about {sent / ASSUMED_LINK_BYTES_PER_S:.0f} s "
                "on a 1 Gbit/s link (not measured yet)"
            )
    if result.uses_workers:
        per_token = result.network_s_per_token
        limit = 1 / per_token if per_token > 0 else float("inf")
        rtts = ", ".join(
            f"{s.place.endpoint} {s.place.rtt_s * 1000:.2f} ms" for s in result.shares if s.place.kind == "worker"
        )
        reasons.append(
            f"the network adds about {per_token * 1000:.1f} ms to each token (round trips: {rtts}): "
            f"at most {limit:.0f} tokens/s from the links alone"
            if limit >= 10
            else f"at most {limit:.1f} tokens/s from the links alone"
        )
        if limit < SLOW_LINK_TOKENS_PER_S:
            result.fits = False
            reasons.insert(
                0,
                f"refused: the links are too slow: their round trips alone hold decoding under "
                f"{SLOW_LINK_TOKENS_PER_S:.0f} tokens/s ({limit:.2f} tokens/s); use a wired network "
                "or a worker nearer to this machine",
            )
