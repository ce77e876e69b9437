"""Synthetic gpt-oss checkpoints: the real layout and vocabulary, random weights.

No machine of this project can download model weights, so edgeoss writes its
own: a folder laid out exactly like openai/gpt-oss-20b on the Hugging Face Hub
(config.json, MXFP4 experts in safetensors shards with an index, the full
o200k_harmony tokenizer, the chat template), at any scale from a few tens of
MB to the real 20b and 120b shapes. Same arguments and seed, same bytes.

Run on its own: python -m edgeoss.weights.synth OUT_DIR [tiny|small|20b|120b]
"""

from __future__ import annotations

import json
import logging
import math
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgeoss import fsutil, resources, spec
from edgeoss.harmony import tokenizer
from edgeoss.spec import Hparams, TensorSpec
from edgeoss.weights import mxfp4, safetensors_stream

log = logging.getLogger(__name__)

SCALES: dict[str, Hparams] = {
    # Seconds to write; both attention kinds, real routing (top-4 of 8).
    "tiny": spec.GPT_OSS_20B.replace(
        name="synthetic-tiny",
        num_layers=2,
        num_experts=8,
        hidden_size=64,
        intermediate_size=64,
        num_attention_heads=4,
        num_kv_heads=2,
    ),
    # Big enough for speed comparisons on a laptop CPU, small enough for CI.
    "small": spec.GPT_OSS_20B.replace(
        name="synthetic-small",
        num_layers=4,
        num_experts=16,
        hidden_size=256,
        intermediate_size=256,
        num_attention_heads=8,
        num_kv_heads=2,
    ),
    "20b": spec.GPT_OSS_20B,
    "120b": spec.GPT_OSS_120B,
}

MAX_SHARD_BYTES = 5_000_000_000
"""Shard size limit, as Hugging Face's default `max_shard_size="5GB"`."""

CHUNK_ELEMENTS = 1 << 22
"""Random values generated per step; bounds memory and fixes the byte stream."""

_BF16_ROUND = np.uint32(0x7FFF)


def hparams_for(scale: str, layers: int | None = None, experts: int | None = None) -> Hparams:
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    hp = SCALES[scale]
    changes: dict[str, object] = {}
    suffix = ""
    if layers is not None:
        changes["num_layers"] = layers
        suffix += f"-{layers}l"
    if experts is not None:
        changes["num_experts"] = experts
        suffix += f"-{experts}e"
    if not changes:
        return hp
    # A real variant with another shape is no longer that variant.
    base = hp.name if hp.name.startswith("synthetic") else f"synthetic-{scale}"
    return hp.replace(name=base + suffix, **changes)


def to_bf16_bits(values: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bit patterns (uint16), rounding to nearest even."""
    bits = values.astype(np.float32).view(np.uint32)
    rounded = bits + _BF16_ROUND + ((bits >> 16) & np.uint32(1))
    out: np.ndarray = (rounded >> 16).astype(np.uint16)
    return out


@dataclass(frozen=True)
class _Init:
    """How one tensor's random values are drawn."""

    kind: str  # "normal", "blocks", "scales"
    mean: float = 0.0
    std: float = 0.0
    exponent: int = 0


def _init_for(t: TensorSpec) -> _Init:
    # Scaled so activations stay O(1) through every layer: weights of a
    # linear map with fan-in n have std 1/sqrt(n); norms start near 1.
    name = t.name
    if name.endswith("_blocks"):
        return _Init("blocks")
    if name.endswith("_scales"):
        fan_in = t.shape[-1] * spec.MXFP4_BLOCK
        return _Init("scales", exponent=mxfp4.scale_exponent_for(1.0 / math.sqrt(fan_in)))
    if "norm" in name:
        return _Init("normal", mean=1.0, std=0.05)
    if name.endswith("sinks"):
        return _Init("normal", std=1.0)
    if name == "model.embed_tokens.weight":
        return _Init("normal", std=1.0)
    if name.endswith(".bias"):
        return _Init("normal", std=0.1 if "router" in name else 0.02)
    return _Init("normal", std=1.0 / math.sqrt(t.shape[-1]))


def tensor_chunks(t: TensorSpec, seed: int) -> Iterator[np.ndarray]:
    """Yield the bytes of tensor `t`, deterministic in (seed, name)."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, zlib.crc32(t.name.encode())])))
    init = _init_for(t)
    remaining = t.numel
    while remaining:
        n = min(remaining, CHUNK_ELEMENTS)
        if init.kind == "blocks":
            yield np.frombuffer(rng.bytes(n), dtype=np.uint8)
        elif init.kind == "scales":
            # Exponents spread over +-1 around the target so scale decoding is exercised.
            yield (init.exponent + rng.integers(-1, 2, size=n)).astype(np.uint8)
        else:
            values = rng.standard_normal(n, dtype=np.float32) * np.float32(init.std) + np.float32(init.mean)
            yield to_bf16_bits(values)
        remaining -= n


def tensor_order(hp: Hparams) -> list[TensorSpec]:
    """The checkpoint's tensors in file order: embedding, layers, head."""
    inventory = hp.original_tensors()
    head = [t for t in inventory if not t.name.startswith("model.layers.")]
    layers = [t for t in inventory if t.name.startswith("model.layers.")]
    layers.sort(key=lambda t: (int(t.name.split(".")[2]), t.name))
    embed = [t for t in head if t.name == "model.embed_tokens.weight"]
    rest = [t for t in head if t.name != "model.embed_tokens.weight"]
    return embed + layers + sorted(rest, key=lambda t: t.name)


def plan_shards(tensors: list[TensorSpec], max_shard_bytes: int) -> list[list[TensorSpec]]:
    shards: list[list[TensorSpec]] = [[]]
    size = 0
    for t in tensors:
        if shards[-1] and size + t.nbytes > max_shard_bytes:
            shards.append([])
            size = 0
        shards[-1].append(t)
        size += t.nbytes
    return shards


def shard_names(count: int) -> list[str]:
    if count == 1:
        return ["model.safetensors"]
    # openai/gpt-oss-* number shards from 0 with "of" the last index
    # (model-00000-of-00002 .. model-00002-of-00002); we mirror that.
    return [f"model-{i:05d}-of-{count - 1:05d}.safetensors" for i in range(count)]


@dataclass(frozen=True)
class SynthPlan:
    hparams: Hparams
    seed: int
    shards: list[tuple[str, list[TensorSpec]]]

    @property
    def tensor_bytes(self) -> int:
        return sum(t.nbytes for _, ts in self.shards for t in ts)

    @property
    def estimated_bytes(self) -> int:
        """Everything the folder will hold (tokenizer files included)."""
        return self.tensor_bytes + 64 * 1024 * 1024

    def summary(self, folder: Path) -> dict[str, Any]:
        """What was written, as `edgeoss synth --json` prints it."""
        hp = self.hparams
        return {
            "path": str(folder.absolute()),
            "name": hp.name,
            "seed": self.seed,
            "layers": hp.num_layers,
            "experts": hp.num_experts,
            "params": hp.total_params,
            "tensor_bytes": self.tensor_bytes,
            "shards": [name for name, _ in self.shards],
        }


def plan(hp: Hparams, seed: int = 0, max_shard_bytes: int = MAX_SHARD_BYTES) -> SynthPlan:
    groups = plan_shards(tensor_order(hp), max_shard_bytes)
    return SynthPlan(hparams=hp, seed=seed, shards=list(zip(shard_names(len(groups)), groups, strict=True)))


def _write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_checkpoint(
    out_dir: Path,
    synth_plan: SynthPlan,
    *,
    overwrite: bool = False,
    on_bytes: Callable[[int], None] | None = None,
) -> Path:
    """Write the checkpoint folder atomically; return its path."""
    hp = synth_plan.hparams
    fsutil.ensure_free_space(out_dir.absolute().parent, synth_plan.estimated_bytes, f"a {hp.name} checkpoint")
    log.info("writing %s (seed %d, %d shards) to %s", hp.name, synth_plan.seed, len(synth_plan.shards), out_dir)
    try:
        with fsutil.atomic_dir(out_dir, overwrite=overwrite) as tmp:
            _write_json(tmp / "config.json", hp.to_hf_config())
            _write_json(tmp / "generation_config.json", spec.GENERATION_CONFIG)
            (tmp / "tokenizer.json").write_bytes(tokenizer.hf_tokenizer_json())
            _write_json(tmp / "tokenizer_config.json", tokenizer.hf_tokenizer_config())
            _write_json(tmp / "special_tokens_map.json", tokenizer.special_tokens_map())
            (tmp / "chat_template.jinja").write_text(resources.chat_template(), encoding="utf-8")

            def chunks(t: TensorSpec) -> Iterator[np.ndarray]:
                return tensor_chunks(t, synth_plan.seed)

            for name, tensors in synth_plan.shards:
                safetensors_stream.write_file(tmp / name, tensors, chunks, on_bytes)
            if len(synth_plan.shards) > 1:
                _write_json(
                    tmp / "model.safetensors.index.json",
                    {
                        "metadata": {"total_size": synth_plan.tensor_bytes},
                        "weight_map": {t.name: name for name, ts in synth_plan.shards for t in ts},
                    },
                )
    except OSError as exc:
        raise fsutil.write_error(exc, out_dir) from exc
    log.info("wrote %s", out_dir)
    return out_dir


def main(argv: list[str] | None = None) -> None:
    import sys

    args = sys.argv[1:] if argv is None else argv
    if not args:
        raise SystemExit("usage: python -m edgeoss.weights.synth OUT_DIR [tiny|small|20b|120b] [SEED]")
    scale = args[1] if len(args) > 1 else "tiny"
    seed = int(args[2]) if len(args) > 2 else 0
    write_checkpoint(Path(args[0]), plan(hparams_for(scale), seed))
    print(args[0])


if __name__ == "__main__":
    main()
