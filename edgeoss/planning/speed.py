"""How fast a plan decodes: the bytes one decode step reads, over the bandwidth
of the memory they are read from.

Generating one token runs the whole model on one position: every weight it
uses is read once, with a few operations per byte, so the step is bound by
memory bandwidth and tokens/s <= 1 / sum over devices (bytes read there /
bandwidth there). The bytes of one step:

- per layer: attention (q, k, v, o with their biases, the sinks, both
  norms), the router (all of it: every expert is scored), and only the
  experts_per_token experts the router picks (4 of 32 in 20b, of 128 in
  120b), MXFP4 (17 bytes per 32 values) with F32 biases;
- the output matrix (vocabulary x hidden), read in full for every token:
  with bf16 matrices it is a third of 20b's step;
- one row of the embedding;
- the KV cache at the context filled so far: full-attention layers read every
  filled cell, sliding-window layers at most the window.

Each part is read where the placement put it (memory.py's model of llama.cpp:
the embedding stays in host memory; with n_gpu_layers = N the output and the
last N - 1 layers are on the GPU; the experts of the first n_cpu_moe layers
stay in host memory; a layer's KV cache lives with the layer). The big
matrices are bf16 in edgeoss's lossless conversion (2 bytes a value) or q8_0
as in ggml-org's published files (34 bytes per 32 values); the experts are
MXFP4 in both. benchmarks/bandwidth_limit.py measures how close llama.cpp
comes to this limit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edgeoss import spec
from edgeoss.backends import LLAMA_CPP, EngineKind
from edgeoss.discover.bandwidth import Bandwidth
from edgeoss.planning import memory

MATRIX_BYTES: dict[str, float] = {
    "bf16": 2.0,  # edgeoss convert (lossless): the checkpoint's own matrices
    "q8_0": memory.TYPE_BYTES["Q8_0"],  # ggml-org's files, edgeoss convert --outtype q8_0: 34 bytes per 32
    "f32": 4.0,  # edgeoss convert --outtype f32
    "int4": 18 / 32,  # onnxruntime-genai's int4 export: 4-bit codes, an f16 scale per 32
}
"""Bytes per value of the large matrices (attention q/k/v/o, output, embedding)."""

_EXPERTS = ("ffn_gate_exps", "ffn_up_exps", "ffn_down_exps")
GB = 1e9
GIB = 1024**3
NEGLIGIBLE_BYTES = 1 << 20
"""A device reading no more than this per token (the embedding row, in host
memory when everything else is on the GPU) does not need a known bandwidth."""


@dataclass(frozen=True)
class StepBytes:
    """Bytes one decode step reads, by where they live and by part."""

    cpu: int  # host memory
    gpu: int  # GPU memory (all GPUs together)
    parts: dict[str, int] = field(default_factory=dict)  # attention, router, experts, output, embedding, kv

    @property
    def total(self) -> int:
        return self.cpu + self.gpu


def step_bytes(
    hp: spec.Hparams,
    *,
    matrix: str = "bf16",
    context_fill: int = 0,
    n_gpu_layers: int = 0,
    n_cpu_moe: int = 0,
) -> StepBytes:
    """Bytes read by one decode step at `context_fill` tokens of context, with
    llama.cpp's placement (n_gpu_layers, n_cpu_moe as in its parameters)."""
    if matrix not in MATRIX_BYTES:
        raise ValueError(f"unknown matrix type {matrix!r}; one of {', '.join(MATRIX_BYTES)}")
    first_gpu_layer = hp.num_layers + 1 - n_gpu_layers  # llama.cpp's i_gpu_start
    output_on_gpu = n_gpu_layers >= 1
    cpu = gpu = 0.0
    parts: dict[str, float] = {}

    def add(part: str, nbytes: float, on_gpu: bool) -> None:
        nonlocal cpu, gpu
        parts[part] = parts.get(part, 0.0) + nbytes
        if on_gpu:
            gpu += nbytes
        else:
            cpu += nbytes

    for t in hp.gguf_tensors():
        # gguf_tensors() spells the large matrices BF16 (the lossless conversion); they take `matrix` here.
        per_value = MATRIX_BYTES[matrix] if t.dtype == "BF16" else memory.TYPE_BYTES[t.dtype]
        if t.name == "token_embd.weight":
            add("embedding", hp.hidden_size * per_value, False)  # one row, looked up on the CPU
        elif not t.name.startswith("blk."):
            add("output", t.numel * per_value, output_on_gpu)
        else:
            layer = int(t.name.split(".")[1])
            on_gpu = layer >= first_gpu_layer
            if any(part in t.name for part in _EXPERTS):
                active = t.numel * hp.experts_per_token // hp.num_experts
                add("experts", active * per_value, on_gpu and layer >= n_cpu_moe)
            elif "ffn_gate_inp" in t.name:
                add("router", t.numel * per_value, on_gpu)
            else:
                add("attention", t.numel * per_value, on_gpu)
    per_cell = hp.kv_bytes_per_token_per_layer()  # f16 K and V
    for layer in range(hp.num_layers):
        cells = min(context_fill, hp.sliding_window) if hp.is_sliding(layer) else context_fill
        add("kv", cells * per_cell, layer >= first_gpu_layer)
    return StepBytes(round(cpu), round(gpu), {k: round(v) for k, v in parts.items()})


def values_read(hp: spec.Hparams) -> int:
    """Weights one decode step reads, counted in values: the active parameters
    (OpenAI's count: the output matrix, not the embedding) plus one embedding row."""
    return hp.active_params + hp.hidden_size


def smaller_file_bytes(hp: spec.Hparams, matrix: str = "q8_0", than: str = "bf16") -> int:
    """How much smaller the whole GGUF is with `matrix` matrices than with `than`."""
    values = sum(t.numel for t in hp.gguf_tensors() if t.dtype == "BF16")
    return round(values * (MATRIX_BYTES[than] - MATRIX_BYTES[matrix]))


def tokens_per_s(step: StepBytes, cpu: float | None, gpu: float | None = None) -> float | None:
    """1 / sum over devices (bytes there / bandwidth there); None when a device
    that reads more than NEGLIGIBLE_BYTES has no known bandwidth."""
    seconds = 0.0
    for nbytes, rate in ((step.cpu, cpu), (step.gpu, gpu)):
        if rate is None or rate <= 0:
            if nbytes > NEGLIGIBLE_BYTES:
                return None
            continue
        seconds += nbytes / rate
    return 1 / seconds if seconds > 0 else None


@dataclass(frozen=True)
class Placement:
    """Where a plan puts the model: llama.cpp's parameters, and the engine."""

    n_gpu_layers: int = 0
    n_cpu_moe: int = 0
    engine: EngineKind = LLAMA_CPP  # or ORT_GENAI: its int4 export, whole on one device


def estimate(
    hp: spec.Hparams,
    placement: Placement,
    *,
    cpu: Bandwidth,
    gpu: Bandwidth | None,
    context_fill: int,
    full_context: int,
    matrix: str = "bf16",
) -> dict[str, Any]:
    """The plan's speed, as JSON: per matrix type, bytes per token by device and
    the tokens/s they allow at `context_fill` and at `full_context` tokens.
    The headline is `matrix` (the plan's file); llama.cpp plans also get the
    other of bf16 and q8_0, as the trade of speed for size and exactness."""
    matrices = ("int4",) if placement.engine is not LLAMA_CPP else (matrix, "q8_0" if matrix == "bf16" else "bf16")
    by_matrix: dict[str, Any] = {}
    for matrix in matrices:
        rates: dict[str, float | None] = {}
        bytes_at: dict[str, dict[str, int]] = {}
        for label, fill in (("start", context_fill), ("full_context", full_context)):
            step = step_bytes(
                hp,
                matrix=matrix,
                context_fill=fill,
                n_gpu_layers=placement.n_gpu_layers,
                n_cpu_moe=placement.n_cpu_moe,
            )
            rates[label] = tokens_per_s(step, cpu.bytes_per_s, gpu.bytes_per_s if gpu else None)
            bytes_at[label] = {"cpu": step.cpu, "gpu": step.gpu}
        by_matrix[matrix] = {
            "bytes_per_token": bytes_at["start"],
            "tokens_per_s": _round(rates["start"]),
            "bytes_per_token_full_context": bytes_at["full_context"],
            "tokens_per_s_full_context": _round(rates["full_context"]),
        }
    headline = matrices[0]
    out: dict[str, Any] = {
        "basis": "memory bandwidth: tokens/s = 1 / sum over devices of (bytes read per token / bandwidth)",
        "matrix": headline,
        "tokens_per_s": by_matrix[headline]["tokens_per_s"],
        "context_fill": context_fill,
        "full_context": full_context,
        "bandwidth": {"cpu": cpu.to_dict(), "gpu": gpu.to_dict() if gpu else None},
        "matrices": by_matrix,
    }
    if "q8_0" in by_matrix and "bf16" in by_matrix:
        out["q8_0_smaller_bytes"] = smaller_file_bytes(hp)
    out["summary"] = summary(out)
    out["trade"] = trade(out)
    return out


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _size(nbytes: float) -> str:
    return f"{nbytes / GB:.2f} GB" if nbytes >= 0.1 * GB else f"{nbytes / 1e6:.0f} MB"


def _rate(value: float | None) -> str:
    if value is None:
        return "?"
    return f"{value:.0f}" if value >= 20 else f"{value:.1f}"


_SOURCE_WORDS = {
    "measured": "measured",
    "remembered": "measured earlier",
    "given": "from EDGEOSS_MEMORY_BANDWIDTH",
    "nvml": "NVML's peak",
    "published": "published",
    "shared": "the host's figure",
}


def summary(speed: dict[str, Any]) -> str:
    """One line: the expected tokens/s and how it was derived."""
    matrix = speed["matrix"]
    figures = speed["matrices"][matrix]
    bandwidth = speed["bandwidth"]
    where, unknown = [], []
    for device, nbytes in figures["bytes_per_token"].items():
        if nbytes <= NEGLIGIBLE_BYTES:
            continue
        found = bandwidth.get(device) or {}
        rate = found.get("bytes_per_s")
        memory = "RAM" if device == "cpu" else "GPU memory"
        source = _SOURCE_WORDS.get(found.get("source", ""), found.get("source", ""))
        where.append(f"{_size(nbytes)} from {memory}" + (f" ({rate / GB:.0f} GB/s, {source})" if rate else ""))
        if not rate:
            unknown.append(f"{memory} bandwidth {found.get('detail', 'unknown')}")
    label = {"bf16": "bf16 matrices", "int4": "int4 export"}.get(matrix, f"{matrix} matrices")
    reads = " + ".join(where) or "nothing"
    if figures["tokens_per_s"] is None:
        return f"per token: {reads} ({label}); tokens/s unknown: " + "; ".join(unknown)
    return (
        f"~{_rate(figures['tokens_per_s'])} tok/s at most (memory bound, per token: {reads}; {label}, "
        f"{speed['context_fill']} tokens into the context; ~{_rate(figures['tokens_per_s_full_context'])} tok/s "
        f"at {speed['full_context']})"
    )


_TRADE_LABELS = {
    "bf16": "bf16 matrices (lossless: edgeoss convert of the original checkpoint)",
    "q8_0": "q8_0 matrices (8-bit, as in ggml-org's files; edgeoss convert --outtype q8_0)",
}


def trade(speed: dict[str, Any]) -> str:
    """The other of bf16 and q8_0: its tokens/s and what it reads and weighs
    more or less; "" when there is none (onnxruntime-genai)."""
    other = next((m for m in speed["matrices"] if m != speed["matrix"]), None)
    if other not in _TRADE_LABELS:
        return ""
    figures = speed["matrices"][other]
    step = sum(figures["bytes_per_token"].values())
    base = sum(speed["matrices"][speed["matrix"]]["bytes_per_token"].values())
    rate = f"~{_rate(figures['tokens_per_s'])} tok/s, " if figures["tokens_per_s"] is not None else ""
    less = other == "q8_0"
    return (
        f"{_TRADE_LABELS[other]}: {rate}{abs(base - step) / GB:.2f} GB {'less' if less else 'more'} read per token, "
        f"the file {speed['q8_0_smaller_bytes'] / GIB:.1f} GiB {'smaller' if less else 'larger'}"
    )
