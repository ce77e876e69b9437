"""Write safetensors files one chunk at a time.

The `safetensors` package serializes whole in-memory dicts; a 20b checkpoint
has 13 GB of tensors, so here the header is computed from shapes alone and
each tensor's bytes are streamed after it, with bounded memory.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from edgeoss.spec import TensorSpec

_ALIGN = 8


@dataclass(frozen=True)
class Layout:
    """A safetensors file's header and where each tensor's data sits."""

    header: bytes
    offsets: dict[str, tuple[int, int]]

    @property
    def data_bytes(self) -> int:
        return max((end for _, end in self.offsets.values()), default=0)

    @property
    def file_bytes(self) -> int:
        return 8 + len(self.header) + self.data_bytes


def layout(tensors: Iterable[TensorSpec], metadata: dict[str, str] | None = None) -> Layout:
    header: dict[str, object] = {"__metadata__": metadata or {"format": "pt"}}
    offsets: dict[str, tuple[int, int]] = {}
    position = 0
    for t in tensors:
        offsets[t.name] = (position, position + t.nbytes)
        header[t.name] = {"dtype": t.dtype, "shape": list(t.shape), "data_offsets": [position, position + t.nbytes]}
        position += t.nbytes
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % _ALIGN)  # the data section starts 8-byte aligned
    return Layout(header=text, offsets=offsets)


Chunks = Callable[[TensorSpec], Iterator[np.ndarray]]


def write(
    fh: BinaryIO,
    tensors: list[TensorSpec],
    chunks: Chunks,
    on_bytes: Callable[[int], None] | None = None,
) -> Layout:
    """Write `tensors` to `fh`; `chunks(t)` yields each tensor's data in order."""
    lay = layout(tensors)
    fh.write(struct.pack("<Q", len(lay.header)))
    fh.write(lay.header)
    for t in tensors:
        written = 0
        for part in chunks(t):
            data = np.ascontiguousarray(part)
            fh.write(data.data.cast("B"))
            written += data.nbytes
            if on_bytes is not None:
                on_bytes(data.nbytes)
        if written != t.nbytes:
            raise ValueError(f"{t.name}: wrote {written} bytes, its shape needs {t.nbytes}")
    return lay


def write_file(
    path: Path, tensors: list[TensorSpec], chunks: Chunks, on_bytes: Callable[[int], None] | None = None
) -> Layout:
    with path.open("wb") as fh:
        return write(fh, tensors, chunks, on_bytes)
