"""Bad input without a real model file: hand-made hostile GGUF headers, a
missing file, a small damaged sharded checkpoint; each gets a one-line reason
and its own exit code (damaged copies of the tiny GGUF:
tests/integration/test_bad_input.py)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bad_files import fails_with
from edgeoss import errors
from edgeoss.cli import app
from edgeoss.weights.checkpoint import open_checkpoint
from edgeoss.weights.gguf.checks import verify
from gguf_tools import raw_header

runner = CliRunner()


# --- structure -------------------------------------------------------------------


def test_wrong_magic(tmp_path: Path) -> None:
    path = tmp_path / "model.gguf"
    path.write_bytes(b"GGML" + b"\0" * 100)
    fails_with(path, errors.NotGGUFError, "not a GGUF file")


def test_unsupported_version(tmp_path: Path) -> None:
    path = tmp_path / "model.gguf"
    path.write_bytes(raw_header(version=99))
    fails_with(path, errors.NotGGUFError, "version 99")


@pytest.mark.parametrize(
    ("header", "fragment"),
    [
        ({"n_tensors": 2**40}, "claims 1099511627776 tensors"),
        ({"n_kv": 2**62}, "metadata entries"),
        ({"kvs": [("general.architecture", 8, struct.pack("<Q", 2**60))]}, "claims"),
        ({"kvs": [("tokens", 9, struct.pack("<IQ", 8, 2**50))]}, "file ends inside tokens"),
        ({"kvs": [("x", 77, b"")]}, "unknown value type"),
        ({"tensors": [("t", [32, 2**50], 0, 0)]}, "absurd shape"),
        ({"tensors": [("t", [32, 8, 8, 8, 8], 0, 0)]}, "5 dimensions"),
        ({"tensors": [("t", [32], 1234, 0)]}, "unknown GGML type"),
        ({"tensors": [("t", [32], 0, 3)], "data": b"\0" * 256}, "not aligned"),
        ({"tensors": [("t", [30], 39, 0)], "data": b"\0" * 256}, "whole 32-blocks"),
        ({"tensors": [("a", [32], 0, 0), ("b", [32], 0, 64)], "data": b"\0" * 256}, "overlap"),
        ({"tensors": [("a", [32], 0, 0), ("a", [32], 0, 128)], "data": b"\0" * 256}, "appears twice"),
    ],
)
def test_hostile_headers_never_allocate_or_crash(tmp_path: Path, header: dict[str, object], fragment: str) -> None:
    path = tmp_path / "hostile.gguf"
    path.write_bytes(raw_header(**header))  # type: ignore[arg-type]
    fails_with(path, errors.StructureError, fragment)


def test_missing_file_and_folder_without_model(tmp_path: Path) -> None:
    fails_with(tmp_path / "nope.gguf", errors.FileAccessError, "cannot open")
    report = verify(tmp_path)
    assert not report.ok
    result = runner.invoke(app, ["verify", str(tmp_path)])
    assert result.exit_code == errors.FileAccessError.exit_code and "genai_config.json" in result.output


# --- checkpoints -------------------------------------------------------------------


@pytest.fixture
def sharded(tmp_path: Path) -> Path:
    from edgeoss.weights import synth

    hp = synth.hparams_for("tiny", layers=1, experts=4)
    return synth.write_checkpoint(tmp_path / "sharded", synth.plan(hp, max_shard_bytes=20_000_000))


def _shards(folder: Path) -> list[Path]:
    shards = sorted(folder.glob("model-*.safetensors"))
    assert len(shards) >= 3
    return shards


def test_checkpoint_missing_shard(sharded: Path) -> None:
    missing = _shards(sharded)[1]
    missing.unlink()
    with pytest.raises(errors.CheckpointError, match=f"{missing.name} named in .* is missing"):
        open_checkpoint(sharded)


def test_checkpoint_index_disagrees_with_shards(sharded: Path) -> None:
    index = json.loads((sharded / "model.safetensors.index.json").read_text())
    index["weight_map"]["model.norm.weight"] = _shards(sharded)[0].name
    (sharded / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(errors.CheckpointError, match="disagrees"):
        open_checkpoint(sharded)


def test_checkpoint_truncated_shard(sharded: Path) -> None:
    shard = max(_shards(sharded), key=lambda p: p.stat().st_size)
    shard.write_bytes(shard.read_bytes()[:-1000])
    with pytest.raises(errors.CheckpointError, match="outside the file"):
        open_checkpoint(sharded)


def test_config_that_is_not_gpt_oss(sharded: Path) -> None:
    config = json.loads((sharded / "config.json").read_text())
    config.update(model_type="llama", architectures=["LlamaForCausalLM"])
    (sharded / "config.json").write_text(json.dumps(config))
    result = runner.invoke(app, ["convert", str(sharded), "-o", str(sharded.parent / "x.gguf")])
    assert result.exit_code == errors.CheckpointError.exit_code
    assert "not gpt-oss" in result.output
    assert not (sharded.parent / "x.gguf").exists()


def test_convert_missing_folder(tmp_path: Path) -> None:
    result = runner.invoke(app, ["convert", str(tmp_path / "nothing"), "-o", str(tmp_path / "x.gguf")])
    assert result.exit_code == errors.CheckpointError.exit_code and "not a folder" in result.output
