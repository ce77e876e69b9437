"""Reading an original gpt-oss checkpoint (the Hugging Face layout) safely.

The folder holds config.json, one or more safetensors shards (with
model.safetensors.index.json when sharded), tokenizer files and the chat
template. Everything is checked before a byte of tensor data is trusted:
the config must describe gpt-oss, the index must agree with the shards, every
header must fit its file, and every tensor must have the shape and dtype the
spec says. Tensor data is then read in bounded chunks, never all at once.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeoss import fsutil, spec
from edgeoss.errors import CheckpointError
from edgeoss.spec import Hparams

INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"
MAX_HEADER_BYTES = 100 * 1024 * 1024
"""safetensors' own limit on the JSON header; anything larger is not a real file."""

_FLOAT_DTYPES = ("BF16", "F16", "F32")
_DTYPE_BYTES = {"BF16": 2, "F16": 2, "F32": 4, "U8": 1, "I8": 1, "F64": 8, "I32": 4, "I64": 8}


@dataclass(frozen=True)
class StoredTensor:
    """Where one tensor's bytes sit in a shard."""

    name: str
    file: Path
    dtype: str
    shape: tuple[int, ...]
    start: int  # absolute file offset
    nbytes: int

    def read(self, offset: int = 0, size: int | None = None) -> bytes:
        size = self.nbytes - offset if size is None else size
        with self.file.open("rb") as fh:
            fh.seek(self.start + offset)
            data = fh.read(size)
        if len(data) != size:
            raise CheckpointError(f"{self.file.name} is truncated inside tensor {self.name}")
        return data

    def chunks(self, chunk_bytes: int = 64 << 20) -> Iterator[bytes]:
        with self.file.open("rb") as fh:
            fh.seek(self.start)
            remaining = self.nbytes
            while remaining:
                data = fh.read(min(remaining, chunk_bytes))
                if not data:
                    raise CheckpointError(f"{self.file.name} is truncated inside tensor {self.name}")
                remaining -= len(data)
                yield data


def read_safetensors_header(path: Path) -> dict[str, StoredTensor]:
    """Parse and bounds-check one safetensors file's header."""
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            prefix = fh.read(8)
            if len(prefix) < 8:
                raise CheckpointError(f"{path.name} is too short to be a safetensors file")
            (header_len,) = struct.unpack("<Q", prefix)
            if header_len > min(MAX_HEADER_BYTES, size - 8):
                raise CheckpointError(f"{path.name}: header length {header_len} does not fit the file ({size} bytes)")
            raw = fh.read(header_len)
    except OSError as exc:
        raise CheckpointError(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        header = fsutil.loads_json(raw, "the header")
    except ValueError as exc:
        raise CheckpointError(f"{path.name}: {exc}") from exc
    if not isinstance(header, dict):
        raise CheckpointError(f"{path.name}: the header is not a JSON object")
    data_start = 8 + header_len
    data_size = size - data_start
    tensors: dict[str, StoredTensor] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        tensors[name] = _tensor_entry(path, name, info, data_start, data_size)
    return tensors


def _tensor_entry(path: Path, name: str, info: Any, data_start: int, data_size: int) -> StoredTensor:
    bad = f"{path.name}: tensor {fsutil.shown(name)} has a malformed entry"
    if not isinstance(info, dict):
        raise CheckpointError(bad)
    dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
    if (
        not isinstance(dtype, str)
        or dtype not in _DTYPE_BYTES
        or not isinstance(shape, list)
        or not isinstance(offsets, list)
        or len(offsets) != 2
    ):
        raise CheckpointError(bad)
    if len(shape) > 8 or not all(isinstance(d, int) and 0 <= d < 2**40 for d in shape):
        raise CheckpointError(f"{path.name}: tensor {fsutil.shown(name)} has an impossible shape {fsutil.shown(shape)}")
    begin, end = offsets
    if not (isinstance(begin, int) and isinstance(end, int) and 0 <= begin <= end <= data_size):
        raise CheckpointError(
            f"{path.name}: tensor {fsutil.shown(name)} lies outside the file (the file may be truncated)"
        )
    if math.prod(shape) * _DTYPE_BYTES[dtype] != end - begin:
        raise CheckpointError(
            f"{path.name}: tensor {fsutil.shown(name)} has {end - begin} bytes, its shape needs more or less"
        )
    return StoredTensor(name, path, dtype, tuple(shape), data_start + begin, end - begin)


def _object(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def hparams_from_config(config: dict[str, Any]) -> Hparams:
    """gpt-oss hyper-parameters from a Hugging Face config.json."""
    architectures = config.get("architectures")
    if config.get("model_type") != "gpt_oss" and "GptOssForCausalLM" not in _list(architectures):
        found = fsutil.shown(config.get("model_type") or architectures)
        raise CheckpointError(f"config.json describes {found}, not gpt-oss", hint="point at a gpt-oss checkpoint")
    quant = _object(config.get("quantization_config"))
    if quant.get("quant_method") != "mxfp4":
        raise CheckpointError(
            "config.json does not declare MXFP4 experts (quantization_config.quant_method)",
            hint="edgeoss converts the original MXFP4 release (openai/gpt-oss-20b or -120b)",
        )
    try:
        rope = _object(config.get("rope_scaling"))
        hp = Hparams(
            name=str(config.get("_name_or_path") or "gpt-oss"),
            num_layers=int(config["num_hidden_layers"]),
            num_experts=int(config["num_local_experts"]),
            hidden_size=int(config["hidden_size"]),
            intermediate_size=int(config["intermediate_size"]),
            num_attention_heads=int(config["num_attention_heads"]),
            num_kv_heads=int(config["num_key_value_heads"]),
            head_dim=int(config["head_dim"]),
            experts_per_token=int(config.get("num_experts_per_tok", config.get("experts_per_token", 4))),
            vocab_size=int(config["vocab_size"]),
            sliding_window=int(config["sliding_window"]),
            context_length=int(config.get("max_position_embeddings", spec.GPT_OSS_20B.context_length)),
            initial_context_length=int(
                rope.get("original_max_position_embeddings", config.get("initial_context_length", 4096))
            ),
            rope_theta=float(config["rope_theta"]),
            rope_scaling_factor=float(rope.get("factor", spec.GPT_OSS_20B.rope_scaling_factor)),
            rope_beta_fast=float(rope.get("beta_fast", spec.GPT_OSS_20B.rope_beta_fast)),
            rope_beta_slow=float(rope.get("beta_slow", spec.GPT_OSS_20B.rope_beta_slow)),
            swiglu_limit=float(config.get("swiglu_limit", spec.GPT_OSS_20B.swiglu_limit)),
            rms_norm_eps=float(config["rms_norm_eps"]),
        )
    except KeyError as exc:
        raise CheckpointError(f"config.json lacks {fsutil.shown(exc.args[0])}") from exc
    except (TypeError, ValueError, OverflowError) as exc:  # OverflowError: int(Infinity)
        raise CheckpointError(f"config.json has an invalid gpt-oss shape: {str(exc)[:200]}") from exc
    layer_types = config.get("layer_types")
    if layer_types is not None and layer_types != hp.layer_types:
        raise CheckpointError("config.json layer_types do not alternate sliding/full attention as gpt-oss does")
    return hp


@dataclass(frozen=True)
class Checkpoint:
    root: Path
    config: dict[str, Any]
    hparams: Hparams
    tensors: dict[str, StoredTensor]

    @property
    def total_bytes(self) -> int:
        return sum(t.nbytes for t in self.tensors.values())

    def file(self, name: str) -> Path:
        return self.root / name


def _load_json(path: Path) -> Any:
    try:
        return fsutil.read_json(path)
    except FileNotFoundError as exc:
        raise CheckpointError(f"{path.name} is missing from {path.parent}") from exc
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path.name} cannot be read: {exc}") from exc


MAX_INDEXED_TENSORS = 100_000
"""More than any gpt-oss has (gpt-oss-120b: a few hundred)."""


def _weight_map(index: object) -> dict[str, str]:
    """The index's tensor -> shard map, each shard a file in the checkpoint folder."""
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise CheckpointError(f"{INDEX_FILE} has no weight_map")
    if len(weight_map) > MAX_INDEXED_TENSORS:
        raise CheckpointError(f"{INDEX_FILE} maps {len(weight_map):,} tensors, more than a gpt-oss has")
    for shard in weight_map.values():
        try:
            fsutil.relative_path(shard, f"a shard named in {INDEX_FILE}")
        except ValueError as exc:
            raise CheckpointError(str(exc), hint="the index must name shard files inside the checkpoint") from None
    return weight_map


def open_checkpoint(root: Path) -> Checkpoint:
    """Open and check an original gpt-oss checkpoint folder."""
    if not root.is_dir():
        raise CheckpointError(f"{root} is not a folder", hint="give the checkpoint folder (it holds config.json)")
    config = _load_json(root / "config.json")
    if not isinstance(config, dict):
        raise CheckpointError("config.json is not a JSON object")
    hp = hparams_from_config(config)

    index_path = root / INDEX_FILE
    tensors: dict[str, StoredTensor] = {}
    if index_path.exists():
        index = _load_json(index_path)
        weight_map = _weight_map(index)
        for shard in sorted(set(weight_map.values())):
            shard_path = root / shard
            if not shard_path.is_file():
                raise CheckpointError(f"shard {shard} named in {INDEX_FILE} is missing", hint="download it again")
            for name, stored in read_safetensors_header(shard_path).items():
                if weight_map.get(name) != shard:
                    raise CheckpointError(
                        f"{INDEX_FILE} disagrees with the shards: {shard} holds {name}, mapped elsewhere"
                    )
                tensors[name] = stored
        unmapped = sorted(set(weight_map) - set(tensors))
        if unmapped:
            raise CheckpointError(
                f"{INDEX_FILE} disagrees with the shards: {len(unmapped)} tensors are in no shard, e.g. {unmapped[0]}"
            )
    elif (root / SINGLE_FILE).is_file():
        tensors = read_safetensors_header(root / SINGLE_FILE)
    else:
        raise CheckpointError(f"{root} has neither {SINGLE_FILE} nor {INDEX_FILE}")

    expected = {t.name: t for t in hp.original_tensors()}
    missing = sorted(set(expected) - set(tensors))
    if missing:
        raise CheckpointError(f"the checkpoint lacks {len(missing)} gpt-oss tensors, e.g. {missing[0]}")
    extra = sorted(set(tensors) - set(expected))
    if extra:
        raise CheckpointError(f"the checkpoint has {len(extra)} tensors gpt-oss does not, e.g. {extra[0]}")
    for name, want in expected.items():
        got = tensors[name]
        # Experts must be MXFP4 bytes; other tensors may be any float type.
        dtype_ok = got.dtype == "U8" if want.dtype == "U8" else got.dtype in _FLOAT_DTYPES
        if got.shape != want.shape or not dtype_ok:
            raise CheckpointError(
                f"{name} is {got.dtype}{list(got.shape)}, gpt-oss needs {want.dtype}{list(want.shape)}"
            )
    return Checkpoint(root=root, config=config, hparams=hp, tensors=tensors)
