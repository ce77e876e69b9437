"""Bad input: every damaged, hostile or wrong file gets a one-line reason and
its own exit code; nothing crashes, nothing half-written stays behind. Here
damaged copies of the tiny GGUF and its checkpoint converted onto a bad disk
(hand-made headers and a small sharded checkpoint: tests/unit/test_bad_input_small.py;
an interrupted conversion: tests/system/test_bad_input_process.py)."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bad_files import fails_with
from edgeoss import errors, fsutil, resources, spec
from edgeoss.cli import app
from edgeoss.weights.gguf import convert
from edgeoss.weights.gguf.checks import verify
from edgeoss.weights.gguf.reader import read_file
from gguf_tools import raw_header, rewrite

runner = CliRunner()


# --- structure -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cut", "error", "fragment"),
    [
        (10, errors.NotGGUFError, "too short"),
        (200, errors.StructureError, "truncated"),  # in the metadata
        (5000, errors.StructureError, "file ends inside tokenizer.ggml.tokens"),
        (-1, errors.StructureError, "runs past the end of the file (truncated?)"),  # in the data
    ],
)
def test_truncated_file(
    tiny_gguf: Path, tmp_path: Path, cut: int, error: type[errors.VerifyError], fragment: str
) -> None:
    data = tiny_gguf.read_bytes()
    path = tmp_path / "cut.gguf"
    path.write_bytes(data[:cut])
    fails_with(path, error, fragment)


def test_truncated_in_the_tensor_table(tiny_gguf: Path, tmp_path: Path) -> None:
    f = read_file(tiny_gguf)
    path = tmp_path / "cut.gguf"
    path.write_bytes(tiny_gguf.read_bytes()[: f.data_offset - 40])
    fails_with(path, errors.StructureError, "file ends inside")


def test_incomplete_split_file(tiny_gguf: Path, tmp_path: Path) -> None:
    shutil.copy(tiny_gguf, tmp_path / "m-00001-of-00002.gguf")
    fails_with(tmp_path / "m-00001-of-00002.gguf", errors.FileAccessError, "m-00002-of-00002.gguf missing")


# --- meaning -----------------------------------------------------------------------


def test_wrong_architecture(tiny_gguf: Path, tmp_path: Path) -> None:
    path = rewrite(tiny_gguf, tmp_path / "llama.gguf", set_keys={"general.architecture": "llama"})
    fails_with(path, errors.SpecMismatchError, "architecture is 'llama'")


def test_required_key_missing(tiny_gguf: Path, tmp_path: Path) -> None:
    path = rewrite(tiny_gguf, tmp_path / "nokey.gguf", drop=("gpt-oss.attention.sliding_window",))
    fails_with(path, errors.SpecMismatchError, "gpt-oss.attention.sliding_window is missing (llama.cpp aborts")


def test_wrong_hyper_parameter(tiny_gguf: Path, tmp_path: Path) -> None:
    path = rewrite(tiny_gguf, tmp_path / "window.gguf", set_keys={"gpt-oss.attention.sliding_window": 4096})
    fails_with(path, errors.SpecMismatchError, "sliding_window 4096")


def test_tensor_shape_disagrees_with_metadata(tiny_gguf: Path, tmp_path: Path) -> None:
    path = rewrite(tiny_gguf, tmp_path / "experts.gguf", set_keys={"gpt-oss.expert_count": 16})
    fails_with(path, errors.TensorInventoryError, "ffn_gate_inp")


def test_another_models_vocabulary(tiny_gguf: Path, tmp_path: Path) -> None:
    tokens = list(read_file(tiny_gguf).metadata["tokenizer.ggml.tokens"])
    tokens[1000], tokens[1001] = tokens[1001], tokens[1000]
    path = rewrite(tiny_gguf, tmp_path / "vocab.gguf", set_keys={"tokenizer.ggml.tokens": tokens})
    fails_with(path, errors.VocabularyError, "not o200k's")


def test_special_token_moved(tiny_gguf: Path, tmp_path: Path) -> None:
    tokens = list(read_file(tiny_gguf).metadata["tokenizer.ggml.tokens"])
    tokens[spec.CALL], tokens[spec.CALL + 1] = tokens[spec.CALL + 1], tokens[spec.CALL]
    path = rewrite(tiny_gguf, tmp_path / "special.gguf", set_keys={"tokenizer.ggml.tokens": tokens})
    fails_with(path, errors.VocabularyError, "200012")


def test_wrong_pre_tokenizer(tiny_gguf: Path, tmp_path: Path) -> None:
    path = rewrite(tiny_gguf, tmp_path / "pre.gguf", set_keys={"tokenizer.ggml.pre": "llama-bpe"})
    fails_with(path, errors.VocabularyError, "llama-bpe")


def test_missing_and_known_bad_chat_template(tiny_gguf: Path, tmp_path: Path) -> None:
    path = rewrite(tiny_gguf, tmp_path / "notemplate.gguf", drop=("tokenizer.chat_template",))
    fails_with(path, errors.ChatTemplateError, "missing")
    chatml = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    path = rewrite(tiny_gguf, tmp_path / "chatml.gguf", set_keys={"tokenizer.chat_template": chatml})
    fails_with(path, errors.ChatTemplateError, "known-bad template")


def test_edited_template_is_a_warning(tiny_gguf: Path, tmp_path: Path) -> None:
    edited = resources.chat_template().replace("Knowledge cutoff", "Cutoff")
    path = rewrite(tiny_gguf, tmp_path / "edited.gguf", set_keys={"tokenizer.chat_template": edited})
    report = verify(path)
    assert report.ok and [w.name for w in report.warnings] == ["chat template"]


# --- deep ----------------------------------------------------------------------------


def test_nan_in_a_float_tensor(tiny_gguf: Path, tmp_path: Path) -> None:
    def poison(name: str, data: bytearray) -> None:
        if name == "blk.1.attn_q.bias":
            data[4:8] = struct.pack("<f", float("nan"))

    path = rewrite(tiny_gguf, tmp_path / "nan.gguf", patch=poison)
    assert verify(path).ok  # only reading the bytes finds it
    fails_with(path, errors.BadNumbersError, "NaN or Inf in ['blk.1.attn_q.bias']", deep=True)


def test_damaged_mxfp4_scale(tiny_gguf: Path, tmp_path: Path) -> None:
    def damage(name: str, data: bytearray) -> None:
        if name == "blk.0.ffn_down_exps.weight":
            data[17 * 5] = 0xFF  # the scale byte of block 5: E8M0 NaN

    path = rewrite(tiny_gguf, tmp_path / "scale.gguf", patch=damage)
    fails_with(path, errors.BadNumbersError, "blk.0.ffn_down_exps.weight", deep=True)


def test_sha256_mismatch(tiny_gguf: Path) -> None:
    fails_with(tiny_gguf, errors.ChecksumError, "!= expected", sha256="0" * 64)
    assert verify(tiny_gguf, sha256=verify(tiny_gguf, deep=True).sha256[tiny_gguf.name]).ok


# --- the output disk ----------------------------------------------------------------


def _mount_tmpfs(path: Path, options: str) -> bool:
    if sys.platform != "linux" or os.geteuid() != 0:
        return False
    path.mkdir()
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    return mount.returncode == 0


def test_read_only_output(tiny_checkpoint: Path, tmp_path: Path) -> None:
    mount = tmp_path / "ro"
    if not _mount_tmpfs(mount, "ro,size=512m"):
        pytest.skip("needs root to mount a read-only tmpfs")
    try:
        result = runner.invoke(app, ["convert", str(tiny_checkpoint), "-o", str(mount / "x.gguf")])
        assert result.exit_code == 1
        assert "cannot write" in result.output and "Read-only file system" in result.output
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_full_output_disk(tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mount = tmp_path / "small"
    if not _mount_tmpfs(mount, "size=20m"):
        pytest.skip("needs root to mount a small tmpfs")
    try:
        with pytest.raises(errors.DiskFullError, match="needs"):
            convert.convert(tiny_checkpoint, mount / "x.gguf")
        monkeypatch.setattr(fsutil, "ensure_free_space", lambda *args: None)
        with pytest.raises(errors.DiskFullError, match="filled up"):
            convert.convert(tiny_checkpoint, mount / "x.gguf")
        assert list(mount.iterdir()) == []
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_random_damage_never_escapes_as_a_crash(tiny_gguf: Path, tmp_path: Path) -> None:
    """Flip random bytes and cut at random places, deterministically: every
    result is a report with a failure class, never an exception."""
    import numpy as np

    rng = np.random.default_rng(1234)
    small = raw_header(
        kvs=[
            ("general.architecture", 8, struct.pack("<Q", 7) + b"gpt-oss"),
            ("gpt-oss.block_count", 4, struct.pack("<I", 2)),
            (
                "tokenizer.ggml.tokens",
                9,
                struct.pack("<IQ", 8, 2) + struct.pack("<Q", 1) + b"a" + struct.pack("<Q", 1) + b"b",
            ),
        ],
        tensors=[("token_embd.weight", [32, 2], 0, 0), ("output.weight", [32, 2], 39, 256)],
        data=b"\0" * 512,
    )
    real_head = tiny_gguf.read_bytes()[:200_000]
    path = tmp_path / "fuzz.gguf"
    for i in range(400):
        base = small if i < 380 else real_head
        data = bytearray(base)
        for _ in range(int(rng.integers(1, 4))):
            data[int(rng.integers(0, len(data)))] = int(rng.integers(0, 256))
        if rng.random() < 0.3:
            data = data[: int(rng.integers(0, len(data)))]
        path.write_bytes(bytes(data))
        report = verify(path, deep=bool(rng.random() < 0.5))
        assert not report.ok
        assert report.failure is not None and report.failure.name != "internal", report.failure
        assert 10 <= report.exit_code <= 18
