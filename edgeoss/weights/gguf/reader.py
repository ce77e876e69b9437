"""A GGUF reader that trusts nothing in the file.

llama.cpp aborts the whole process on some malformed files, and gguf-py's
reader allocates whatever sizes the header claims. This reader reads the
header and checks every count, length, dimension, type and offset against
the bytes the file really has before using it, so a corrupt, truncated or
hostile file gives a one-line StructureError and nothing else.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeoss.errors import FileAccessError, NotGGUFError, StructureError

if TYPE_CHECKING:
    from gguf import GGMLQuantizationType

MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
DEFAULT_ALIGNMENT = 32
MAX_DIMS = 4  # GGML_MAX_DIMS
MAX_TENSORS = 1_000_000
MAX_KV = 1_000_000
MAX_STRING = 64 * 1024 * 1024  # a chat template is ~17 KB; 64 MiB is far past any real string

# GGUF value types: id -> (struct format, size); 8 string, 9 array are special.
_SCALARS: dict[int, tuple[str, int]] = {
    0: ("<B", 1),
    1: ("<b", 1),
    2: ("<H", 2),
    3: ("<h", 2),
    4: ("<I", 4),
    5: ("<i", 4),
    6: ("<f", 4),
    7: ("<?", 1),
    10: ("<Q", 8),
    11: ("<q", 8),
    12: ("<d", 8),
}
_STRING, _ARRAY = 8, 9
_U64 = struct.Struct("<Q")


@functools.cache
def _quant_types() -> tuple[dict[GGMLQuantizationType, tuple[int, int]], type[GGMLQuantizationType]]:
    """gguf-py's table of GGML types, imported on first use: the package's import
    brings its writer and yaml along (a twentieth of a second), which a command
    that only recalls a remembered verification never needs."""
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    return GGML_QUANT_SIZES, GGMLQuantizationType


_SPLIT_NAME = re.compile(r"^(?P<stem>.+)-(?P<no>\d{5})-of-(?P<count>\d{5})\.gguf$")


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]  # row-major (NumPy order): GGUF's dims reversed
    ggml_type: int
    offset: int  # absolute offset in its file
    nbytes: int
    file: Path

    @property
    def type_name(self) -> str:
        return _quant_types()[1](self.ggml_type).name

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


@dataclass
class GGUFFile:
    path: Path
    version: int
    metadata: dict[str, Any]
    tensors: dict[str, TensorInfo]
    alignment: int
    data_offset: int
    size: int


@dataclass
class GGUFModel:
    """One GGUF model: a single file or all shards of a split file."""

    files: list[GGUFFile]
    metadata: dict[str, Any] = field(default_factory=dict)
    tensors: dict[str, TensorInfo] = field(default_factory=dict)

    @property
    def paths(self) -> list[Path]:
        return [f.path for f in self.files]

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)


class _Cursor:
    """Bounds-checked reads from a memory map."""

    def __init__(self, buf: bytes, name: str, file_size: int) -> None:
        self.buf = buf
        self.pos = 0
        self.name = name
        self.file_size = file_size

    def need(self, n: int, what: str) -> None:
        if n < 0 or self.pos + n > self.file_size:
            raise StructureError(f"{self.name}: file ends inside {what} (at byte {self.pos}, needs {n} more)")
        if self.pos + n > len(self.buf):
            raise _NeedMore

    def scalar(self, vtype: int, what: str) -> Any:
        fmt, size = _SCALARS[vtype]
        self.need(size, what)
        (value,) = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += size
        return value

    def u32(self, what: str) -> int:
        return int(self.scalar(4, what))

    def u64(self, what: str) -> int:
        return int(self.scalar(10, what))

    def string(self, what: str) -> str:
        length = self.u64(f"the length of {what}")
        if length > MAX_STRING:
            raise StructureError(f"{self.name}: {what} claims {length} bytes")
        self.need(length, what)
        raw = bytes(self.buf[self.pos : self.pos + length])
        self.pos += length
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise StructureError(f"{self.name}: {what} is not UTF-8") from exc

    def strings(self, count: int, what: str) -> list[str]:
        """An array of `count` strings, read in one pass.

        A gpt-oss header holds about 650k of them (tokens and merges); read
        one by one through string() they took most of a second. Here the
        loop only slices bytes, and the array is decoded in one call.
        """
        buf, pos, end = self.buf, self.pos, len(self.buf)
        length_of = _U64.unpack_from
        pieces: list[bytes] = []
        append = pieces.append
        for _ in range(count):
            if pos + 8 > end:
                break
            (length,) = length_of(buf, pos)
            if length > MAX_STRING:
                raise StructureError(f"{self.name}: an item of {what} claims {length} bytes")
            pos += 8
            if pos + length > end:
                pos -= 8
                break
            append(buf[pos : pos + length])
            pos += length
        if len(pieces) < count:
            # The file (or what was read of it so far) ends inside the array:
            # need() says which, after the items that were whole.
            self.pos = pos
            self.need(end - pos + 1, what)
        self.pos = pos
        joined = b"\n".join(pieces)
        try:
            text = joined.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise StructureError(f"{self.name}: {what} holds an item that is not UTF-8") from exc
        # A newline inside an item would split it: only then go item by item.
        if joined.count(b"\n") == max(count - 1, 0):
            return text.split("\n") if count else []
        return [piece.decode("utf-8") for piece in pieces]

    def value(self, vtype: int, what: str) -> Any:
        if vtype in _SCALARS:
            return self.scalar(vtype, what)
        if vtype == _STRING:
            return self.string(what)
        if vtype == _ARRAY:
            item_type = self.u32(f"the item type of {what}")
            count = self.u64(f"the length of {what}")
            if item_type == _ARRAY:
                raise StructureError(f"{self.name}: {what} is a nested array, which GGUF models do not use")
            if item_type not in _SCALARS and item_type != _STRING:
                raise StructureError(f"{self.name}: {what} has unknown item type {item_type}")
            # Every item takes at least this many bytes: refuse counts the file cannot hold.
            min_item = _SCALARS[item_type][1] if item_type in _SCALARS else 8
            self.need(count * min_item, what)
            if item_type in _SCALARS:
                fmt, size = _SCALARS[item_type]
                values = list(struct.unpack_from(f"<{count}{fmt[1]}", self.buf, self.pos))
                self.pos += count * size
                return values
            return self.strings(count, what)
        raise StructureError(f"{self.name}: {what} has unknown value type {vtype}")


HEADER_READ = 16 * 1024 * 1024
MAX_HEADER = 256 * 1024 * 1024  # real gpt-oss headers are ~12 MB (tokens and merges)


def read_file(path: Path) -> GGUFFile:
    """Parse one GGUF file's header, metadata and tensor table, checking all of it.

    The header is read into memory (16 MiB at first, more only when it is
    longer and the file is): no mapping of the file is held, because a CUDA
    build of llama.cpp was seen to crash loading a file that another mapping
    in the process had touched.
    """
    try:
        size = path.stat().st_size
        fh = path.open("rb")
    except OSError as exc:
        raise FileAccessError(f"cannot open {path}: {exc.strerror or exc}") from exc
    with fh:
        if size < 24:
            raise NotGGUFError(f"{path.name} is {size} bytes: too short to be GGUF")
        want = min(size, HEADER_READ)
        while True:
            fh.seek(0)
            try:
                buf = fh.read(want)
            except OSError as exc:
                raise FileAccessError(f"cannot read {path}: {exc.strerror or exc}") from exc
            try:
                return _parse(buf, path, size)
            except _NeedMore:
                if want >= min(size, MAX_HEADER):
                    raise StructureError(
                        f"{path.name}: the header claims more than {MAX_HEADER // 2**20} MiB of metadata"
                    ) from None
                want = min(size, MAX_HEADER, want * 4)


class _NeedMore(Exception):
    """The header continues past what was read so far."""


def _parse(buf: bytes, path: Path, size: int) -> GGUFFile:
    cur = _Cursor(buf, path.name, size)
    if buf[:4] != MAGIC:
        raise NotGGUFError(f"{path.name} is not a GGUF file (magic {bytes(buf[:4])!r})")
    cur.pos = 4
    version = cur.u32("the version")
    if version not in SUPPORTED_VERSIONS:
        raise NotGGUFError(f"{path.name} is GGUF version {version}; edgeoss reads versions 2 and 3")
    n_tensors = cur.u64("the tensor count")
    n_kv = cur.u64("the metadata count")
    if n_tensors > MAX_TENSORS or n_tensors * 24 > size:
        raise StructureError(f"{path.name} claims {n_tensors} tensors, more than the file can describe (truncated?)")
    if n_kv > MAX_KV or n_kv * 13 > size:
        raise StructureError(f"{path.name} claims {n_kv} metadata entries, more than the file can hold (truncated?)")

    metadata: dict[str, Any] = {}
    for i in range(n_kv):
        key = cur.string(f"metadata key {i}")
        vtype = cur.u32(f"the type of {key}")
        if key in metadata:
            raise StructureError(f"{path.name}: metadata key {key!r} appears twice")
        metadata[key] = cur.value(vtype, key)

    alignment = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
    if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1) or alignment > 1 << 20:
        raise StructureError(f"{path.name}: general.alignment {alignment!r} is not a sane power of two")

    raw_infos = []
    for i in range(n_tensors):
        name = cur.string(f"the name of tensor {i}")
        n_dims = cur.u32(f"the rank of {name}")
        if not 1 <= n_dims <= MAX_DIMS:
            raise StructureError(f"{path.name}: tensor {name!r} has {n_dims} dimensions (1..{MAX_DIMS} allowed)")
        dims = [cur.u64(f"the shape of {name}") for _ in range(n_dims)]
        ggml_type = cur.u32(f"the type of {name}")
        offset = cur.u64(f"the offset of {name}")
        raw_infos.append((name, dims, ggml_type, offset))

    data_offset = cur.pos + (-cur.pos % alignment)
    data_size = size - data_offset
    if data_size < 0:
        raise StructureError(f"{path.name}: file ends before its tensor data begins")

    tensors: dict[str, TensorInfo] = {}
    for name, dims, ggml_type, offset in raw_infos:
        if name in tensors:
            raise StructureError(f"{path.name}: tensor {name!r} appears twice")
        try:
            sizes, types = _quant_types()
            block, type_bytes = sizes[types(ggml_type)]
        except (ValueError, KeyError):
            raise StructureError(f"{path.name}: tensor {name!r} has unknown GGML type {ggml_type}") from None
        if any(d < 1 or d > 1 << 40 for d in dims):
            raise StructureError(f"{path.name}: tensor {name!r} has an absurd shape {dims}")
        numel = math.prod(dims)
        if dims[0] % block:
            raise StructureError(f"{path.name}: tensor {name!r} rows of {dims[0]} are not whole {block}-blocks")
        nbytes = numel // block * type_bytes
        if offset % alignment:
            raise StructureError(f"{path.name}: tensor {name!r} is not aligned to {alignment} bytes")
        if offset + nbytes > data_size:
            raise StructureError(f"{path.name}: tensor {name!r} runs past the end of the file (truncated?)")
        tensors[name] = TensorInfo(name, tuple(reversed(dims)), ggml_type, data_offset + offset, nbytes, path)

    by_offset = sorted(tensors.values(), key=lambda t: t.offset)
    for a, b in itertools.pairwise(by_offset):
        if a.offset + a.nbytes > b.offset:
            raise StructureError(f"{path.name}: tensors {a.name!r} and {b.name!r} overlap")
    return GGUFFile(path, version, metadata, tensors, alignment, data_offset, size)


def split_paths(path: Path) -> list[Path]:
    """All shards of a split GGUF (model-00001-of-00003.gguf ...), or [path]."""
    match = _SPLIT_NAME.match(path.name)
    if not match:
        return [path]
    count = int(match["count"])
    if not 1 <= count <= 9999:
        raise StructureError(f"{path.name}: split count {count} is absurd")
    stem = match["stem"]
    return [path.with_name(f"{stem}-{i:05d}-of-{count:05d}.gguf") for i in range(1, count + 1)]


def read_model(path: Path) -> GGUFModel:
    """Read a GGUF model: one file, or every shard of a split one."""
    paths = split_paths(path)
    missing = [p.name for p in paths if not p.exists()]
    if missing and len(paths) > 1:
        raise FileAccessError(f"split GGUF is incomplete: {', '.join(missing)} missing beside {path.name}")
    files = [read_file(p) for p in paths]
    model = GGUFModel(files=files, metadata=dict(files[0].metadata))
    if len(files) > 1:
        declared = files[0].metadata.get("split.count")
        if declared != len(files):
            raise StructureError(f"{paths[0].name} declares split.count {declared!r}, found {len(files)} shards")
        for i, f in enumerate(files):
            if f.metadata.get("split.no") != i:
                raise StructureError(f"{f.path.name} declares split.no {f.metadata.get('split.no')!r}, expected {i}")
    for f in files:
        for name, info in f.tensors.items():
            if name in model.tensors:
                raise StructureError(f"tensor {name!r} appears in two shards")
            model.tensors[name] = info
    return model
