"""An independent NumPy forward pass of gpt-oss: numerical ground truth.

Written from gpt-oss's description, with transformers' GptOssForCausalLM read
for the fine print (mask edges, YaRN, the clamp), and sharing nothing with
edgeoss but the MXFP4 decoder, which has its own bit-exact test against
transformers (tests/integration/test_transformers_load.py). It is slow and
simple on purpose: one prompt, no KV cache, no batching.

Weights are kept in float32 (bf16 and MXFP4 values are exact there) and the
forward pass computes in float64, so that its own rounding is ~1e-16 and any
difference measured against another runtime is that runtime's error.
"""

from __future__ import annotations

import dataclasses
import json
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edgeoss.weights import mxfp4

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Config:
    """The config.json values the forward pass uses."""

    hidden_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    num_experts: int
    experts_per_token: int
    layer_types: tuple[str, ...]  # "sliding_attention" or "full_attention", one per layer
    sliding_window: int
    rms_norm_eps: float
    rope_theta: float
    rope_factor: float
    rope_original_context: int
    rope_beta_fast: float
    rope_beta_slow: float
    swiglu_limit: float
    swiglu_alpha: float

    @classmethod
    def from_json(cls, c: dict[str, Any]) -> Config:
        # Published checkpoints say "rope_scaling"; transformers 5 re-saves it as "rope_parameters".
        rope: dict[str, Any] = c.get("rope_scaling") or c.get("rope_parameters") or {}
        # truncate: false means an unrounded YaRN ramp; forward's yarn_round=True gives the rounded one.
        if rope.get("rope_type") != "yarn" or rope.get("truncate", True) is not False:
            raise ValueError(f"expected gpt-oss's YaRN settings (truncate: false), got {rope}")
        return cls(
            hidden_size=c["hidden_size"],
            num_heads=c["num_attention_heads"],
            num_kv_heads=c["num_key_value_heads"],
            head_dim=c["head_dim"],
            num_experts=c["num_local_experts"],
            experts_per_token=c["num_experts_per_tok"],
            layer_types=tuple(c["layer_types"]),
            sliding_window=c["sliding_window"],
            rms_norm_eps=c["rms_norm_eps"],
            rope_theta=c.get("rope_theta") or rope["rope_theta"],
            rope_factor=rope["factor"],
            rope_original_context=rope["original_max_position_embeddings"],
            rope_beta_fast=rope["beta_fast"],
            rope_beta_slow=rope["beta_slow"],
            swiglu_limit=c["swiglu_limit"],
            # Not in the published config.json: a constant of the architecture.
            swiglu_alpha=c.get("swiglu_alpha", 1.702),
        )


@dataclass
class Model:
    config: Config
    tensors: dict[str, F32]  # checkpoint names; experts dequantized and split (see load)


def read_safetensors(path: Path) -> dict[str, F32 | npt.NDArray[np.uint8]]:
    """Every tensor of one .safetensors file. The format is an 8-byte little-endian
    header length, a JSON header (dtype, shape, byte range per tensor), then the
    data. Parsed by hand because NumPy has no bfloat16: safetensors' NumPy loader
    refuses BF16, but a bf16 is the top half of a float32, so a shift decodes it."""
    raw = path.read_bytes()
    (header_len,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + header_len])
    header.pop("__metadata__", None)
    data = np.frombuffer(raw, dtype=np.uint8, offset=8 + header_len)
    out: dict[str, F32 | npt.NDArray[np.uint8]] = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        buf, shape, dtype = data[begin:end], tuple(info["shape"]), info["dtype"]
        if dtype == "BF16":
            out[name] = (buf.view("<u2").astype(np.uint32) << 16).view(np.float32).reshape(shape)
        elif dtype == "F32":
            out[name] = buf.view("<f4").astype(np.float32).reshape(shape)
        elif dtype == "U8":
            out[name] = buf.copy().reshape(shape)
        else:
            raise ValueError(f"{path.name}: {name} has dtype {dtype}, which gpt-oss checkpoints do not use")
    return out


def load(checkpoint_dir: Path) -> Model:
    config = Config.from_json(json.loads((checkpoint_dir / "config.json").read_text()))
    index = checkpoint_dir / "model.safetensors.index.json"
    shards = ["model.safetensors"]
    if index.exists():  # a sharded checkpoint: the index maps each tensor to its shard
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    raw: dict[str, F32 | npt.NDArray[np.uint8]] = {}
    for shard in shards:
        raw.update(read_safetensors(checkpoint_dir / shard))

    tensors: dict[str, F32] = {}
    for name in list(raw):
        if not name.endswith("_blocks"):
            continue
        stem = name.removesuffix("_blocks")  # ...experts.gate_up_proj or ...experts.down_proj
        # [experts, out, in]: rows are output features, like every nn.Linear weight.
        weight = mxfp4.dequantize(raw.pop(name), raw.pop(stem + "_scales"))
        bias = raw.pop(stem + "_bias").astype(np.float32)
        if stem.endswith("gate_up_proj"):
            # gate and up are interleaved row by row: gate = even rows, up = odd rows.
            prefix = stem.removesuffix("gate_up_proj")
            tensors[prefix + "gate.weight"], tensors[prefix + "up.weight"] = weight[:, 0::2], weight[:, 1::2]
            tensors[prefix + "gate.bias"], tensors[prefix + "up.bias"] = bias[:, 0::2], bias[:, 1::2]
        else:
            tensors[stem + ".weight"], tensors[stem + ".bias"] = weight, bias
    for name, value in raw.items():
        assert value.dtype == np.float32, f"{name} is {value.dtype}, not a float tensor"
        tensors[name] = value  # type: ignore[assignment]
    return Model(config, tensors)


def linear(x: F64, weight: F32, bias: F32 | None = None) -> F64:
    """x @ weight.T + bias, weight [out, in] as stored. The explicit cast keeps NumPy
    on its float64 BLAS path (a mixed float32/float64 product is several times slower)."""
    y: F64 = x @ weight.astype(np.float64).T
    return y if bias is None else y + bias


def rms_norm(x: F64, weight: F32, eps: float, *, as_ggml: bool = False) -> F64:
    """RMSNorm; `as_ggml` computes it in float32 in ggml's order of operations
    (squares summed in double, mean and scale in float, x * scale, then the
    weight), for when the next step rounds to Q8_0 and exact ties occur (see
    forward's q8_0_matrices)."""
    if as_ggml:
        x32 = x.astype(np.float32)
        mean = ((x32 * x32).astype(np.float64).sum(axis=-1, keepdims=True) / x.shape[-1]).astype(np.float32)
        scale = np.float32(1) / np.sqrt(mean + np.float32(eps))
        normed: F64 = ((x32 * scale) * weight.astype(np.float32)).astype(np.float64)
        return normed
    out: F64 = x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * weight
    return out


def yarn_inv_freq(cfg: Config, *, yarn_round: bool = False) -> tuple[F64, float]:
    """YaRN: the angle per position of each rotated pair [head_dim/2], and the attention scaling."""
    d, base = cfg.head_dim, cfg.rope_theta
    freq = base ** (np.arange(0, d, 2, dtype=np.float64) / d)  # wavelength / 2pi of each pair, unscaled

    # Pairs that turn fewer than beta_slow times over the original context are
    # interpolated (positions divided by factor), those turning more than beta_fast
    # times are kept, and a linear ramp blends the pairs in between.
    def correction_dim(rotations: float) -> float:
        return d * math.log(cfg.rope_original_context / (rotations * 2 * math.pi)) / (2 * math.log(base))

    low, high = correction_dim(cfg.rope_beta_fast), correction_dim(cfg.rope_beta_slow)
    if yarn_round:  # llama.cpp (and transformers with truncate: true) widen the ramp to whole pairs
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, d - 1)
    ramp = np.clip((np.arange(d // 2) - low) / max(high - low, 1e-3), 0.0, 1.0)  # 0: extrapolate, 1: interpolate
    inv_freq: F64 = ramp / (cfg.rope_factor * freq) + (1 - ramp) / freq
    return inv_freq, 0.1 * math.log(cfg.rope_factor) + 1.0


def rope_cos_sin(cfg: Config, n_tokens: int, *, yarn_round: bool) -> tuple[F64, F64]:
    """RoPE tables [T, head_dim/2]. Like transformers and OpenAI's reference, the YaRN
    attention scaling multiplies cos and sin, so it reaches q.k squared."""
    inv_freq, mscale = yarn_inv_freq(cfg, yarn_round=yarn_round)
    angles = np.arange(n_tokens, dtype=np.float64)[:, None] * inv_freq[None, :]
    return np.cos(angles) * mscale, np.sin(angles) * mscale


def apply_rope(x: F64, cos: F64, sin: F64) -> F64:
    """NeoX style: dimension i pairs with i + head_dim/2 (not with its neighbour)."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    c, s = cos[:, None, :], sin[:, None, :]  # broadcast over heads of [T, heads, head_dim]
    return np.concatenate([x1 * c - x2 * s, x2 * c + x1 * s], axis=-1)


def attention(
    cfg: Config, t: dict[str, F32], p: str, x: F64, cos: F64, sin: F64, sliding: bool, *, q8_0_inputs: bool = False
) -> F64:
    n, d = x.shape[0], cfg.head_dim
    x = q8_0(x) if q8_0_inputs else x
    q = linear(x, t[p + "q_proj.weight"], t[p + "q_proj.bias"]).reshape(n, cfg.num_heads, d)
    k = linear(x, t[p + "k_proj.weight"], t[p + "k_proj.bias"]).reshape(n, cfg.num_kv_heads, d)
    v = linear(x, t[p + "v_proj.weight"], t[p + "v_proj.bias"]).reshape(n, cfg.num_kv_heads, d)
    q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
    # Grouped-query attention: query head h reads kv head h // (heads per kv head).
    group = cfg.num_heads // cfg.num_kv_heads
    k, v = np.repeat(k, group, axis=1), np.repeat(v, group, axis=1)
    scores = np.einsum("qhd,khd->hqk", q, k) / math.sqrt(d)

    qi, ki = np.arange(n)[:, None], np.arange(n)[None, :]
    allowed = ki <= qi
    if sliding:  # transformers: kv > q - window, i.e. the token itself and the window - 1 before it
        allowed &= ki > qi - cfg.sliding_window
    scores = np.where(allowed, scores, -np.inf)

    # Attention sinks: one learned logit per head joins the softmax, then is dropped,
    # so a head can put weight on "nothing" and its outputs need not sum to one.
    sinks = np.broadcast_to(t[p + "sinks"].astype(np.float64)[:, None, None], (cfg.num_heads, n, 1))
    logits = np.concatenate([scores, sinks], axis=-1)
    probs = np.exp(logits - logits.max(axis=-1, keepdims=True))
    probs = (probs / probs.sum(axis=-1, keepdims=True))[..., :-1]
    out = np.einsum("hqk,khd->qhd", probs, v).reshape(n, cfg.num_heads * d)
    return linear(q8_0(out) if q8_0_inputs else out, t[p + "o_proj.weight"], t[p + "o_proj.bias"])


def q8_0(x: F64) -> F64:
    """Round rows to GGML's Q8_0 (blocks of 32: int8 codes, an f16 scale), as
    llama.cpp's CPU backend does to activations before an MXFP4 or Q8_0 matmul
    (its SIMD quantize_row_q8_0: 127 / amax, round half to even)."""
    blocks = x.reshape(*x.shape[:-1], -1, 32).astype(np.float32)
    amax = np.abs(blocks).max(axis=-1, keepdims=True)
    d = amax / 127
    inv = np.divide(127.0, amax, out=np.zeros_like(amax), where=amax != 0)  # as ggml: 127 / amax
    codes = np.round(blocks * inv)
    return (codes * d.astype(np.float16).astype(np.float32)).reshape(x.shape).astype(np.float64)


def moe(cfg: Config, t: dict[str, F32], p: str, x: F64, *, q8_0_inputs: bool = False) -> F64:
    router = linear(x, t[p + "router.weight"], t[p + "router.bias"])
    top = np.argsort(-router, axis=-1, kind="stable")[:, : cfg.experts_per_token]  # [T, k]
    top_logits = np.take_along_axis(router, top, axis=-1)
    # Softmax over the k chosen logits only; the other experts get no weight at all.
    weights = np.exp(top_logits - top_logits.max(axis=-1, keepdims=True))
    weights /= weights.sum(axis=-1, keepdims=True)

    out = np.zeros_like(x)
    limit, alpha = cfg.swiglu_limit, cfg.swiglu_alpha
    for e in range(cfg.num_experts):
        rows, slot = np.nonzero(top == e)  # each token picks an expert at most once
        if rows.size == 0:
            continue
        h = q8_0(x[rows]) if q8_0_inputs else x[rows]
        gate = linear(h, t[p + "experts.gate.weight"][e], t[p + "experts.gate.bias"][e])
        up = linear(h, t[p + "experts.up.weight"][e], t[p + "experts.up.bias"][e])
        # gpt-oss's SwiGLU: gate clamped from above only, up on both sides, and up + 1.
        gate = np.minimum(gate, limit)
        up = np.clip(up, -limit, limit)
        act = (up + 1) * (gate / (1 + np.exp(-alpha * gate)))
        act = q8_0(act) if q8_0_inputs else act
        y = linear(act, t[p + "experts.down_proj.weight"][e], t[p + "experts.down_proj.bias"][e])
        out[rows] += weights[rows, slot, None] * y
    return out


def forward(
    model: Model,
    token_ids: Sequence[int],
    *,
    yarn_round: bool = False,
    q8_0_moe: bool = False,
    q8_0_matrices: bool = False,
) -> F32:
    """Logits [T, vocab] (float32) for one prompt, every position.

    yarn_round and q8_0_moe reproduce llama.cpp's two known departures (whole-
    dimension YaRN ramp; Q8_0 activations into MXFP4 matmuls on the CPU).
    q8_0_matrices reproduces what llama.cpp's CPU does with a Q8_0 GGUF's
    matrices (give it q8_0_weights(model)): the activations entering the
    attention projections and the output matrix are rounded to Q8_0 too, and
    RMSNorm runs in float32 as ggml's does, because a Q8_0 embedding row times
    a bf16 norm weight is a ratio of small integers, whose Q8_0 rounding meets
    exact ties that float32 and float64 would break differently."""
    cfg, t = model.config, model.tensors
    ids = np.asarray(token_ids, dtype=np.int64)
    x: F64 = t["model.embed_tokens.weight"][ids].astype(np.float64)
    cos, sin = rope_cos_sin(cfg, len(ids), yarn_round=yarn_round)
    eps, as_ggml = cfg.rms_norm_eps, q8_0_matrices
    for i, layer_type in enumerate(cfg.layer_types):
        p = f"model.layers.{i}."
        h = rms_norm(x, t[p + "input_layernorm.weight"], eps, as_ggml=as_ggml)
        sliding = layer_type == "sliding_attention"
        x = x + attention(cfg, t, p + "self_attn.", h, cos, sin, sliding, q8_0_inputs=q8_0_matrices)
        h = rms_norm(x, t[p + "post_attention_layernorm.weight"], eps, as_ggml=as_ggml)
        x = x + moe(cfg, t, p + "mlp.", h, q8_0_inputs=q8_0_moe)
    x = rms_norm(x, t["model.norm.weight"], eps, as_ggml=as_ggml)
    logits: F32 = linear(q8_0(x) if q8_0_matrices else x, t["lm_head.weight"]).astype(np.float32)
    return logits


Q8_0_MATRICES = (
    "model.embed_tokens.weight",
    "lm_head.weight",
    "q_proj.weight",
    "k_proj.weight",
    "v_proj.weight",
    "o_proj.weight",
)
"""The checkpoint's matrices that `edgeoss convert --outtype q8_0` rounds to Q8_0."""


def q8_0_weight(w: F32) -> F32:
    """A weight matrix rounded to Q8_0 as ggml's reference quantize_row_q8_0_ref
    does (which llama-quantize and gguf-py follow): per block of 32, d = amax /
    127 stored as f16, codes = round(x * (1 / d)) halves away from zero."""
    codes, d = q8_0_weight_codes(w)
    out: F32 = (codes * d.astype(np.float32)).reshape(w.shape).astype(np.float32)
    return out


def q8_0_weight_codes(w: F32) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float16]]:
    """(codes [..., blocks, 32] as float32 integers, scales [..., blocks, 1] as f16) of q8_0_weight."""
    blocks = w.reshape(*w.shape[:-1], -1, 32).astype(np.float32)
    d = np.abs(blocks).max(axis=-1, keepdims=True) / np.float32(127)
    inv = np.divide(np.float32(1), d, out=np.zeros_like(d), where=d != 0)
    x = np.abs(blocks * inv)
    whole = np.floor(x)
    codes = np.sign(blocks) * (whole + np.floor(2 * (x - whole)))  # C's roundf: halves away from zero, exactly
    return codes, d.astype(np.float16)


def q8_0_weights(model: Model) -> Model:
    """A copy whose Q8_0_MATRICES are rounded by q8_0_weight; the rest shared."""
    tensors = {n: q8_0_weight(w) if n.endswith(Q8_0_MATRICES) else w for n, w in model.tensors.items()}
    return Model(model.config, tensors)


def with_config(model: Model, **changes: object) -> Model:
    """A copy sharing the weights, with some config values changed (for experiments)."""
    return Model(dataclasses.replace(model.config, **changes), model.tensors)  # type: ignore[arg-type]
