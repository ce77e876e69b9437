"""A model across this machine and its workers (llama.cpp's RPC): which layers go
where, whether it fits at all, and what the network costs.

How llama.cpp places layers with devices given (split by layer): the token
embedding and the first layers stay on the CPU; the last `n_gpu_layers` of the
n_layer + 1 "layers" (the last one is the output matrix) go to the devices in
list order, each taking a run in proportion to its split. edgeoss lists the
workers first and this machine's devices last, so the output matrix, on the
last device, is this machine's: its first GPU, or, with no GPU, its CPU named
as a device for that one "layer". The 201k logits of each token never cross
the network; only the hidden state (2880 floats) does, once into each worker
and once back.

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

ROUND_TRIPS_PER_DEVICE = 1
"""Per decode step, each worker's device: llama.cpp streams the step's inputs and graph to it
without waiting (SET_TENSOR, GRAPH_RECOMPUTE) and waits once, for the hidden state back
(GET_TENSOR). Measured by benchmarks/workers.py: 1 answered command of 7 or 8 a token."""
STEP_BYTES = 15_000 + 11_528
"""A step's traffic with one worker device, measured (benchmarks/workers.py, 20b widths, a
short chat): the hidden state and the step's small inputs out, the hidden state (2880 floats
and a header) back."""
MASK_BYTES_PER_CELL = 4
"""The attention masks go out every step and grow with the KV cells in use: two masks (sliding
and full) of f16, an upper bound (measured 1.0 to 2.4 bytes a cell)."""
SLOW_LINK_TOKENS_PER_S = 2.0
"""Below this, from the network alone, a chat is not usable: a context that long is not
planned, and a pool too slow at any context is refused."""
ASSUMED_LINK_BYTES_PER_S = 125e6
"""1 Gbit/s, what a wired home network gives: taken, and said so, where a worker's link speed
was not measured."""
RAM_MARGIN_FRACTION = 0.10
RAM_MARGIN_MIN = 1 * GIB
DEVICE_MARGIN = 512 * 1024 * 1024  # a worker's device: its own process, buffers' alignment
CPU_DEVICE = "CPU"  # ggml's name for this machine's CPU, listed as a device only to hold the output


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
    output: bool = False  # holds the output matrix (and the logits)


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
    def devices(self) -> list[tuple[str, int]]:
        """llama.cpp's devices in order with their split (layers; the last one's counts the
        output too): the workers', then this machine's GPUs, the output's holder last."""
        shares = [s for s in self.shares if s.place.kind != "cpu" and s.layers > 0]
        output = next((s for s in self.shares if s.output), None)
        if output is None or not shares:
            return []
        ordered = sorted(shares, key=lambda s: (s is output, s.place.kind != "worker"))
        out = [(s.place.device, s.layers) for s in ordered]
        if output in ordered:
            out[-1] = (out[-1][0], out[-1][1] + 1)
        else:
            out.append((output.place.device, 1))  # this machine's CPU, as a device, for the output alone
        return out

    @property
    def n_gpu_layers(self) -> int:
        """llama.cpp's n_gpu_layers for `devices`: the layers and the output they hold."""
        return sum(n for _, n in self.devices)

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


def ram_budget(available: int, cap: int | None = None) -> int:
    """What this machine's RAM can give the model: what is available less a margin for the
    rest of the machine, or the cap a person set (EDGEOSS_LOCAL_MEMORY) if that is less."""
    budget = max(0, available - max(RAM_MARGIN_MIN, int(available * RAM_MARGIN_FRACTION)))
    return min(budget, cap) if cap is not None else budget


def device_budget(free: int) -> int:
    """A worker's device: its free memory (or the --mem offer) less room for its own process."""
    return max(0, free - min(DEVICE_MARGIN, free // 10))


def places(ram: int, gpus: list[tuple[str, str, int]], workers: list[WorkerProfile]) -> list[Place]:
    """This machine's GPUs (device, name, free bytes), its RAM (`ram`: ram_budget's), then
    each worker's devices (the largest offer first)."""
    out = [
        Place(f"{name} (this machine)", "gpu", max(0, free - memory.CUDA_CONTEXT - DEVICE_MARGIN), device)
        for device, name, free in gpus
    ]
    out.append(Place("this machine's RAM", "cpu", ram, CPU_DEVICE))
    remote = [
        Place(
            f"{w.endpoint}" + (f" device {d.index}" if len(w.devices) > 1 else ""),
            "worker",
            device_budget(d.free_bytes),
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
    """A device's compute buffer for its run of layers: the experts' matmuls of one micro-batch
    (measured 79 MiB for a 20b-shape layer on a worker; this gives 94)."""
    return memory.N_UBATCH * 4 * (2 * hp.experts_per_token * hp.intermediate_size + 8 * hp.hidden_size)


def _host_bytes(hp: spec.Hparams, weights: Weights, with_output: bool) -> int:
    """What stays in this machine's RAM whatever the split: the embedding, the logits, the
    process, and the output matrix unless a GPU here holds it."""
    output = weights.output if with_output else 0
    return weights.token_embd + output + memory.compute_bytes(hp) + memory.PROCESS_OVERHEAD


def split(hp: spec.Hparams, weights: Weights, context: int, where: list[Place]) -> list[Share] | None:
    """Layers in llama.cpp's order (this machine's RAM takes the first ones, then the devices in
    turn), each place taking as many as fit, preferring this machine; None when they do not all fit."""
    per_layer = [_layer_bytes(hp, weights, context, i) for i in range(hp.num_layers)]
    cpu = next(p for p in where if p.kind == "cpu")
    # The output matrix goes with this machine's first GPU when there is one, else its RAM.
    output_at = next((p for p in where if p.kind == "gpu" and p.budget >= weights.output), cpu)
    budgets = {id(p): p.budget for p in where}
    budgets[id(cpu)] -= _host_bytes(hp, weights, with_output=output_at is cpu)
    if output_at is not cpu:
        budgets[id(output_at)] -= weights.output + _device_overhead(hp)
    if budgets[id(cpu)] < 0:
        return None
    # How many layers each place could hold, preferred places first (their order in `where`).
    counts: dict[int, int] = {}
    left = hp.num_layers
    for place in where:
        overhead = 0 if place.kind == "cpu" or place is output_at else _device_overhead(hp)
        room = budgets[id(place)] - overhead
        n = 0
        # Layers differ only by their KV cache (sliding or full): size each place's run by the largest.
        while n < left and room >= max(per_layer) * (n + 1):
            n += 1
        counts[id(place)] = n
        left -= n
    if left > 0:
        return None
    # llama.cpp's order: the RAM's layers first, then the workers, then this machine's devices.
    devices = sorted((p for p in where if p.kind != "cpu"), key=lambda p: (p is output_at, p.kind != "worker"))
    shares, first = [], 0
    for place in [cpu, *devices]:
        n = counts[id(place)]
        holds_output = place is output_at
        layer_bytes = sum(per_layer[first : first + n])
        if place is cpu:
            extra = _host_bytes(hp, weights, with_output=holds_output)
        else:
            extra = (_device_overhead(hp) if n or holds_output else 0) + (weights.output if holds_output else 0)
        shares.append(Share(place, first, n, layer_bytes + extra, output=holds_output))
        first += n
    return shares


def network_seconds(shares: list[Share], cells: int) -> float:
    """Per decode token with `cells` KV cells in use: each worker device's round trip, and its
    step's bytes over its link (assumed 1 Gbit/s where not measured)."""
    total = 0.0
    for share in shares:
        if share.place.kind != "worker" or not share.layers:
            continue
        rate = share.place.link_bytes_per_s or ASSUMED_LINK_BYTES_PER_S
        total += ROUND_TRIPS_PER_DEVICE * share.place.rtt_s + (STEP_BYTES + MASK_BYTES_PER_CELL * cells) / rate
    return total


def plan_pool(
    hp: spec.Hparams,
    weights: Weights,
    ram: int,
    gpus: list[tuple[str, str, int]],
    workers: list[WorkerProfile],
    contexts: tuple[int, ...],
) -> PoolPlan:
    """The longest context of `contexts` at which the model fits across this machine and the
    workers, and the links still give SLOW_LINK_TOKENS_PER_S with it full; or a plan that does
    not fit, saying by how much, or which link is too slow."""
    where = places(ram, gpus, workers)
    too_slow: list[tuple[int, float]] = []  # (context, tokens/s from the links alone) passed over
    for context in contexts:
        shares = split(hp, weights, context, where)
        if shares is None:
            continue
        result = PoolPlan(True, hp.name, context, shares)
        result.network_s_per_token = network_seconds(shares, 0)
        full = network_seconds(shares, context)
        if result.uses_workers and full * SLOW_LINK_TOKENS_PER_S > 1:
            too_slow.append((context, 1 / full))
            continue
        for share in shares:
            if share.place.kind == "worker" and share.layers:
                result.over_link_bytes[share.place.endpoint] = (
                    result.over_link_bytes.get(share.place.endpoint, 0) + share.bytes
                )
        _explain(result, hp, where, full)
        if too_slow:
            longer, rate = too_slow[0]
            result.reasons.append(
                f"the context is {context} tokens, not {longer}: with {longer} in use the links alone would hold "
                f"decoding at {rate:.2f} tokens/s"
            )
        return result
    if too_slow:
        context, rate = too_slow[-1]
        rtts = ", ".join(f"{w.endpoint} {w.rtt_s * 1000:.1f} ms" for w in workers)
        return PoolPlan(
            False,
            hp.name,
            0,
            reasons=[
                f"refused: the links are too slow: even at {context} tokens their round trips and traffic alone "
                f"hold decoding at {rate:.2f} tokens/s, under {SLOW_LINK_TOKENS_PER_S:.0f} (round trips: {rtts})",
                "use a wired network, or a worker nearer to this machine",
            ],
        )
    need = _host_bytes(hp, weights, with_output=True) + sum(
        _layer_bytes(hp, weights, contexts[-1], i) for i in range(hp.num_layers)
    )
    have = sum(p.budget for p in where)
    largest = max(_layer_bytes(hp, weights, contexts[-1], i) for i in range(hp.num_layers))
    listed = ", ".join(f"{p.name} {gib(p.budget)}" for p in where)
    return PoolPlan(
        False,
        hp.name,
        0,
        reasons=[
            f"{hp.name} needs about {gib(need)} at {contexts[-1]} tokens; this machine and its workers offer "
            f"{gib(have)} usable ({listed})",
            f"add {gib(max(need - have, largest))} more: another worker, or a larger --mem on one"
            + (" (layers are placed whole: each place must hold one of " + gib(largest) + ")" if need <= have else ""),
        ],
    )


def _explain(result: PoolPlan, hp: spec.Hparams, where: list[Place], full_s: float) -> None:
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
        if share.layers or share.output:
            last = share.first_layer + share.layers - 1
            span = (
                (f"layer {last}" if share.layers == 1 else f"layers {share.first_layer}-{last}") if share.layers else ""
            )
            held = ", ".join(x for x in (span, "the output matrix" if share.output else "") if x)
            reasons.append(f"{share.place.name}: {held}, {gib(share.bytes)} of {gib(share.place.budget)}")
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
        rtts = ", ".join(
            f"{s.place.endpoint} {s.place.rtt_s * 1000:.2f} ms"
            for s in result.shares
            if s.place.kind == "worker" and s.layers
        )
        measured = all(s.place.link_bytes_per_s for s in result.shares if s.place.kind == "worker" and s.layers)
        reasons.append(
            f"the network adds about {result.network_s_per_token * 1000:.1f} ms to each token at the start of a chat "
            f"and {full_s * 1000:.1f} ms with all {result.context_length} tokens in use (round trips: {rtts}"
            + ("" if measured else "; links taken as 1 Gbit/s, not measured")
            + f"): at most {1 / full_s:.0f} tokens/s from the links alone"
        )
