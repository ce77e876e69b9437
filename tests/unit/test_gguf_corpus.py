"""A generated corpus of damaged GGUF files, every one through `verify` with a
time limit: truncation at every boundary, every count and length field set to
0, 1, 2^31 and 2^63, offsets past the end, type codes out of range. Each must
end in a failure class (exit 10 to 18) within the limit: 0 crashes, 0 hangs.
(The hand-written cases are in test_bad_input_small.py and
tests/integration/test_bad_input.py.)"""

from __future__ import annotations

import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgeoss import spec
from edgeoss.weights.verify import verify_path

TIME_LIMIT_S = 1.0
EXTREMES = (0, 1, 2**31, 2**63)


class Builder:
    """A small, well-formed GGUF with a map of where each field lies, so that the
    corpus can damage one field at a time."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.fields: dict[str, tuple[int, str]] = {}  # name -> (offset, struct format)

    def put(self, fmt: str, value: int | float, name: str | None = None) -> None:
        if name:
            self.fields[name] = (len(self.out), fmt)
        self.out += struct.pack(fmt, value)

    def string(self, text: str, name: str) -> None:
        raw = text.encode()
        self.put("<Q", len(raw), f"{name}.length")
        self.out += raw

    def build(self) -> bytes:
        self.out += b"GGUF"
        self.put("<I", 3, "version")
        self.put("<Q", 2, "n_tensors")
        self.put("<Q", 3, "n_kv")
        self.string("general.architecture", "kv0.key")
        self.put("<I", 8, "kv0.type")
        self.string(spec.GGUF_ARCH, "kv0.value")
        self.string(f"{spec.GGUF_ARCH}.block_count", "kv1.key")
        self.put("<I", 4, "kv1.type")
        self.put("<I", 2, "kv1.value")
        self.string("tokenizer.ggml.tokens", "kv2.key")
        self.put("<I", 9, "kv2.type")
        self.put("<I", 8, "kv2.item_type")
        self.put("<Q", 2, "kv2.count")
        self.string("a", "kv2.item0")
        self.string("b", "kv2.item1")
        for i, name in enumerate(("output_norm.weight", "token_embd.weight")):
            self.string(name, f"t{i}.name")
            self.put("<I", 1, f"t{i}.n_dims")
            self.put("<Q", 64, f"t{i}.dim0")
            self.put("<I", 0, f"t{i}.type")  # F32
            self.put("<Q", i * 256, f"t{i}.offset")
        self.out += b"\0" * (-len(self.out) % 32)
        self.fields["data"] = (len(self.out), "")
        self.out += b"\0" * 512
        return bytes(self.out)


def corpus() -> Iterator[tuple[str, bytes]]:
    b = Builder()
    good = b.build()
    for name, (offset, fmt) in b.fields.items():
        if not fmt:
            continue
        size = struct.calcsize(fmt)
        yield f"truncated-in-{name}", good[: offset + size // 2]
        yield f"truncated-after-{name}", good[: offset + size]
        for value in EXTREMES:
            if size == 4 and value >= 2**32:
                value = 2**32 - 1
            damaged = bytearray(good)
            struct.pack_into(fmt, damaged, offset, value)
            yield f"{name}={value}", bytes(damaged)
    for code in (13, 39, 40, 255, 2**31):
        damaged = bytearray(good)
        struct.pack_into("<I", damaged, b.fields["kv1.type"][0], code)
        yield f"value-type={code}", bytes(damaged)
        damaged = bytearray(good)
        struct.pack_into("<I", damaged, b.fields["t0.type"][0], code)
        yield f"tensor-type={code}", bytes(damaged)
    yield "empty", b""
    yield "magic-only", b"GGUF"
    yield "data-cut", good[: b.fields["data"][0] + 100]


CASES = list(corpus())


def test_the_corpus_is_large_and_its_model_is_well_formed(tmp_path: Path) -> None:
    assert len(CASES) > 150
    path = tmp_path / "good.gguf"
    path.write_bytes(Builder().build())
    report = verify_path(path)
    # Well-formed as a file: it fails as gpt-oss (spec or inventory), not as a structure.
    assert report.exit_code in (13, 14), report.summary()


@pytest.mark.parametrize(("name", "data"), CASES, ids=[name for name, _ in CASES])
def test_every_damaged_file_ends_in_a_failure_class(tmp_path: Path, name: str, data: bytes) -> None:
    path = tmp_path / "damaged.gguf"
    path.write_bytes(data)
    started = time.monotonic()
    report = verify_path(path)
    elapsed = time.monotonic() - started
    assert elapsed < TIME_LIMIT_S, f"{name}: {elapsed:.2f} s"
    # The model is no gpt-oss to begin with, so every variant fails: the point is how (a class, at once).
    assert not report.ok and 10 <= report.exit_code <= 18, (name, report.summary())
