"""Test helpers that make damaged or altered GGUF files on purpose.

`rewrite` copies a GGUF with metadata or tensor data changed, through
gguf-py's writer; `raw_header` builds header bytes field by field so tests
can put impossible values exactly where a reader must catch them.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gguf
import numpy as np

from edgeoss.weights.gguf.reader import read_file

V = gguf.GGUFValueType


def _vtype(key: str, value: Any) -> tuple[gguf.GGUFValueType, gguf.GGUFValueType | None]:
    if isinstance(value, bool):
        return V.BOOL, None
    if isinstance(value, str):
        return V.STRING, None
    if isinstance(value, float):
        return V.FLOAT32, None
    if isinstance(value, int):
        return V.UINT32, None
    if isinstance(value, list):
        if value and isinstance(value[0], str):
            return V.ARRAY, V.STRING
        return V.ARRAY, V.INT32
    raise TypeError(f"{key}: {type(value)}")


def rewrite(
    src: Path,
    dst: Path,
    *,
    drop: tuple[str, ...] = (),
    set_keys: dict[str, Any] | None = None,
    patch: Callable[[str, bytearray], None] | None = None,
    split_max_tensors: int = 0,
) -> Path:
    """Copy `src` to `dst` with metadata keys dropped or set and tensor bytes patched;
    with split_max_tensors, as a split GGUF (dst-00001-of-0000N.gguf ...)."""
    f = read_file(src)
    metadata = {k: v for k, v in f.metadata.items() if k not in drop and not k.startswith("GGUF.")}
    metadata.update(set_keys or {})
    arch = str(metadata.pop("general.architecture", "gpt-oss"))
    writer = gguf.GGUFWriter(path=None, arch=arch, split_max_tensors=split_max_tensors)
    for key, value in metadata.items():
        vtype, sub = _vtype(key, value)
        writer.add_key_value(key, value, vtype, sub_type=sub)
    data = src.read_bytes()
    infos = list(f.tensors.values())
    for t in infos:
        writer.add_tensor_info(
            t.name, t.shape, np.dtype(np.float32), t.nbytes, raw_dtype=gguf.GGMLQuantizationType(t.ggml_type)
        )
    writer.open_output_file(dst)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for t in infos:
        raw = bytearray(data[t.offset : t.offset + t.nbytes])
        if patch is not None:
            patch(t.name, raw)
        writer.write_tensor_data(np.frombuffer(bytes(raw), dtype=np.uint8))
    writer.close()
    return dst


def _string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<Q", len(raw)) + raw


def raw_header(
    *,
    magic: bytes = b"GGUF",
    version: int = 3,
    n_tensors: int | None = None,
    n_kv: int | None = None,
    kvs: list[tuple[str, int, bytes]] | None = None,
    tensors: list[tuple[str, list[int], int, int]] | None = None,
    data: bytes = b"",
) -> bytes:
    """A GGUF built field by field; counts may lie on purpose."""
    kvs = kvs if kvs is not None else [("general.architecture", 8, _string("gpt-oss"))]
    tensors = tensors or []
    out = magic + struct.pack("<I", version)
    out += struct.pack("<QQ", len(tensors) if n_tensors is None else n_tensors, len(kvs) if n_kv is None else n_kv)
    for key, vtype, value in kvs:
        out += _string(key) + struct.pack("<I", vtype) + value
    for name, dims, ggml_type, offset in tensors:
        out += _string(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", ggml_type, offset)
    out += b"\0" * (-len(out) % 32)
    return out + data
