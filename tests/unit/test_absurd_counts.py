"""A header's counts never size work before they are bounded: a GGUF (or a
checkpoint's config.json) that claims absurd layers, experts or widths is
rejected with a reason in well under a second, not after building an
inventory from the number (found from outside: over a minute, heading for
memory exhaustion)."""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path

import pytest

from edgeoss import errors, spec
from edgeoss.weights.checkpoint import open_checkpoint
from edgeoss.weights.verify import verify_path
from gguf_tools import raw_header

UINT64, FLOAT32, STRING = 10, 6, 8
TIME_LIMIT_S = 1.0


def _kvs(**override: int) -> list[tuple[str, int, bytes]]:
    hp = spec.GPT_OSS_20B
    out: list[tuple[str, int, bytes]] = [("general.architecture", STRING, _string(spec.GGUF_ARCH))]
    for key, (attribute, kind) in spec.GGUF_HPARAM_KEYS.items():
        value = override.get(key, getattr(hp, attribute))
        if kind is int:
            out.append((f"{spec.GGUF_ARCH}.{key}", UINT64, struct.pack("<Q", value)))
        else:
            out.append((f"{spec.GGUF_ARCH}.{key}", FLOAT32, struct.pack("<f", value)))
    out.append((f"{spec.GGUF_ARCH}.rope.scaling.type", STRING, _string("yarn")))
    return out


def _string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<Q", len(raw)) + raw


ABSURD = [0, 1, 2, 2**31, 2**63]


@pytest.mark.parametrize("key", ["block_count", "expert_count", "embedding_length", "attention.head_count"])
@pytest.mark.parametrize("value", ABSURD)
def test_an_absurd_gguf_count_is_rejected_at_once(tmp_path: Path, key: str, value: int) -> None:
    path = tmp_path / "absurd.gguf"
    path.write_bytes(raw_header(kvs=_kvs(**{key: value})))
    started = time.monotonic()
    report = verify_path(path)
    elapsed = time.monotonic() - started
    assert not report.ok
    assert elapsed < TIME_LIMIT_S, f"{key}={value}: {elapsed:.2f} s"
    assert report.exit_code in (errors.SpecMismatchError.exit_code, errors.TensorInventoryError.exit_code)


@pytest.mark.parametrize("field", ["num_hidden_layers", "num_local_experts", "hidden_size"])
@pytest.mark.parametrize("value", [2**31, 2**63])
def test_an_absurd_checkpoint_config_is_rejected_at_once(tiny_checkpoint_config: Path, field: str, value: int) -> None:
    config = json.loads((tiny_checkpoint_config / "config.json").read_text())
    config[field] = value
    (tiny_checkpoint_config / "config.json").write_text(json.dumps(config))
    started = time.monotonic()
    with pytest.raises(errors.CheckpointError):
        open_checkpoint(tiny_checkpoint_config)
    assert time.monotonic() - started < TIME_LIMIT_S


@pytest.fixture
def tiny_checkpoint_config(tiny_checkpoint: Path, tmp_path: Path) -> Path:
    """A copy of the tiny checkpoint's small files; the weights are linked, never read here."""
    folder = tmp_path / "ckpt"
    folder.mkdir()
    for item in tiny_checkpoint.iterdir():
        (folder / item.name).symlink_to(item)
    (folder / "config.json").unlink()
    (folder / "config.json").write_text((tiny_checkpoint / "config.json").read_text())
    return folder


def test_the_shape_limits_leave_room_for_every_gpt_oss() -> None:
    for hp in spec.VARIANTS.values():
        spec.Hparams(**{**hp.__dict__, "num_layers": spec.SHAPE_LIMITS["num_layers"]})
    with pytest.raises(ValueError, match="num_layers"):
        spec.GPT_OSS_20B.replace(num_layers=spec.SHAPE_LIMITS["num_layers"] + 1)
