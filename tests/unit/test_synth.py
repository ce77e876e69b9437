"""Synthetic checkpoints: layout, content, determinism, and nothing half-written
(an interrupted `edgeoss synth` process: tests/system/test_synth_process.py)."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open

from edgeoss import fsutil, spec
from edgeoss.errors import DiskFullError, OutputExistsError
from edgeoss.weights import mxfp4, safetensors_stream, synth

EXPECTED_FILES = {
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
}


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_tiny_layout_and_config(tiny_checkpoint: Path) -> None:
    assert {p.name for p in tiny_checkpoint.iterdir()} == EXPECTED_FILES | {"model.safetensors"}
    config = json.loads((tiny_checkpoint / "config.json").read_text())
    hp = synth.SCALES["tiny"]
    assert config == hp.to_hf_config()
    assert config["quantization_config"]["quant_method"] == "mxfp4"
    generation = json.loads((tiny_checkpoint / "generation_config.json").read_text())
    assert generation["eos_token_id"] == [200002, 199999, 200012]
    assert (
        json.loads((tiny_checkpoint / "tokenizer_config.json").read_text())["chat_template"]
        == (tiny_checkpoint / "chat_template.jinja").read_text()
    )
    assert oct(tiny_checkpoint.stat().st_mode & 0o777) != "0o700"


def test_tensors_match_the_spec_inventory(tiny_checkpoint: Path) -> None:
    hp = synth.SCALES["tiny"]
    expected = {t.name: t for t in hp.original_tensors()}
    dtypes = {"BF16": "bfloat16", "U8": "uint8"}
    with safe_open(str(tiny_checkpoint / "model.safetensors"), "pt") as f:
        assert set(f.keys()) == set(expected)
        for name in f.keys():  # noqa: SIM118 - safe_open is not a dict
            tensor = f.get_tensor(name)
            assert tuple(tensor.shape) == expected[name].shape, name
            assert str(tensor.dtype).removeprefix("torch.") == dtypes[expected[name].dtype], name


def test_expert_weights_are_scaled_mxfp4(tiny_checkpoint: Path) -> None:
    with safe_open(str(tiny_checkpoint / "model.safetensors"), "np") as f:
        blocks = f.get_tensor("model.layers.0.mlp.experts.gate_up_proj_blocks")
        scales = f.get_tensor("model.layers.0.mlp.experts.gate_up_proj_scales")
    target = mxfp4.scale_exponent_for(1 / np.sqrt(64))
    assert set(np.unique(scales)) == {target - 1, target, target + 1}
    values = mxfp4.dequantize(blocks, scales)
    assert values.shape == (8, 128, 64)
    assert np.isfinite(values).all()
    assert 0.5 / 8 < float(values.std()) < 2.0 / 8  # about 1/sqrt(fan_in)
    assert len(np.unique(blocks & 0x0F)) == 16 and len(np.unique(blocks >> 4)) == 16


def test_same_seed_same_bytes_other_seed_other_weights(tmp_path: Path, tiny_checkpoint: Path) -> None:
    again = synth.write_checkpoint(tmp_path / "again", synth.plan(synth.hparams_for("tiny"), seed=0))
    assert digests(again) == digests(tiny_checkpoint)
    other = synth.write_checkpoint(tmp_path / "other", synth.plan(synth.hparams_for("tiny"), seed=1))
    a, b = digests(other), digests(tiny_checkpoint)
    assert a["model.safetensors"] != b["model.safetensors"]
    assert a["tokenizer.json"] == b["tokenizer.json"]


def test_sharded_checkpoint_has_an_index_like_the_hub(tmp_path: Path) -> None:
    hp = synth.hparams_for("tiny", layers=3, experts=4)
    assert hp.name == "synthetic-tiny-3l-4e"
    out = synth.write_checkpoint(tmp_path / "sharded", synth.plan(hp, seed=3, max_shard_bytes=20_000_000))
    shards = sorted(p.name for p in out.glob("*.safetensors"))
    # embedding | layers | lm_head | norm: each would overflow the shard before it
    assert shards == [f"model-0000{i}-of-00003.safetensors" for i in range(4)]
    index = json.loads((out / "model.safetensors.index.json").read_text())
    assert set(index["weight_map"]) == {t.name for t in hp.original_tensors()}
    total = 0
    for shard in shards:
        with safe_open(str(out / shard), "pt") as f:
            for name in f.keys():  # noqa: SIM118
                assert index["weight_map"][name] == shard
                tensor = f.get_tensor(name)
                total += tensor.numel() * tensor.element_size()
    assert index["metadata"]["total_size"] == total


def test_existing_folder_is_not_overwritten(tmp_path: Path) -> None:
    out = tmp_path / "taken"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    with pytest.raises(OutputExistsError):
        synth.write_checkpoint(out, synth.plan(synth.hparams_for("tiny", layers=1, experts=4)))
    assert (out / "precious.txt").read_text() == "keep me"


def test_force_replaces_only_after_success(tmp_path: Path) -> None:
    out = tmp_path / "replace"
    out.mkdir()
    (out / "old.txt").write_text("old")
    synth.write_checkpoint(out, synth.plan(synth.hparams_for("tiny", layers=1, experts=4)), overwrite=True)
    assert not (out / "old.txt").exists() and (out / "model.safetensors").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["replace"]


def test_full_disk_mid_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = safetensors_stream.write_file
    calls = {"n": 0}

    def disk_fills_up(path: Path, *args: object, **kwargs: object) -> object:
        calls["n"] += 1
        with path.open("wb") as fh:
            fh.write(b"\0" * 4096)  # something half-written, as a real full disk leaves
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(safetensors_stream, "write_file", disk_fills_up)
    out = tmp_path / "full"
    with pytest.raises(DiskFullError, match="filled up"):
        synth.write_checkpoint(out, synth.plan(synth.hparams_for("tiny", layers=1, experts=4)))
    assert calls["n"] == 1
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(safetensors_stream, "write_file", real_write)


def test_not_enough_space_is_refused_before_writing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Usage:
        total, used, free = 10**9, 10**9 - 1000, 1000

    monkeypatch.setattr(fsutil.shutil, "disk_usage", lambda path: Usage)
    with pytest.raises(DiskFullError, match="needs"):
        synth.write_checkpoint(tmp_path / "x", synth.plan(synth.hparams_for("tiny")))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(sys.platform != "linux" or os.geteuid() != 0, reason="needs root to mount a small tmpfs")
def test_real_small_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mount = tmp_path / "small"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40m", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("tmpfs mount not permitted here")
    try:
        p = synth.plan(synth.hparams_for("tiny"))  # about 80 MB: does not fit in 40 MB
        with pytest.raises(DiskFullError, match="needs"):
            synth.write_checkpoint(mount / "ckpt", p)
        # Without the up-front check the write itself meets the full disk.
        monkeypatch.setattr(fsutil, "ensure_free_space", lambda *args: None)
        with pytest.raises(DiskFullError, match="filled up"):
            synth.write_checkpoint(mount / "ckpt", p)
        assert list(mount.iterdir()) == []
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_stale_partial_of_a_killed_run_is_cleaned(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".ckpt.partial-{dead.stdout.strip()}-abc"
    stale.mkdir()
    (stale / "model.safetensors").write_bytes(b"half")
    live = tmp_path / f".ckpt.partial-{os.getpid()}-xyz"
    live.mkdir()
    assert fsutil.remove_stale_partials(tmp_path / "ckpt") == [stale]
    assert live.exists() and not stale.exists()


def test_bf16_rounding() -> None:
    values = np.array([1.0, -2.5, 3.14159, 1e-3, 65504.0], dtype=np.float32)
    bits = synth.to_bf16_bits(values)
    back = (bits.astype(np.uint32) << 16).view(np.float32)
    assert np.allclose(back, values, rtol=2**-8)
    assert bits[0] == 0x3F80


def test_unknown_scale() -> None:
    with pytest.raises(ValueError, match="unknown scale"):
        synth.hparams_for("huge")


def test_20b_plan_has_real_shapes_and_three_shards() -> None:
    p = synth.plan(synth.hparams_for("20b"))
    assert [name for name, _ in p.shards] == [
        "model-00000-of-00002.safetensors",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
    ]
    assert 12.5e9 < p.tensor_bytes < 14e9  # the published checkpoint is 13.8 GB
    assert {t.name: t.shape for _, ts in p.shards for t in ts} == {
        t.name: t.shape for t in spec.GPT_OSS_20B.original_tensors()
    }
