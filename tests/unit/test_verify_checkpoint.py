"""`edgeoss verify` on an original checkpoint folder (what vLLM and transformers load):
a sound one passes; each kind of damage fails with its own check and exit code."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgeoss.cli.main import app
from edgeoss.errors import (
    BadNumbersError,
    ChatTemplateError,
    ChecksumError,
    TensorInventoryError,
    VocabularyError,
)
from edgeoss.weights import checkpoint
from edgeoss.weights.verify import verify_path


@pytest.fixture
def folder(tiny_checkpoint: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_checkpoint, tmp_path / "ckpt"))


def _failed(report: object) -> tuple[str, str]:
    failure = report.failure  # type: ignore[attr-defined]
    assert failure is not None
    return failure.name, failure.error


def _poke(folder: Path, name: str, data: bytes) -> None:
    tensor = checkpoint.open_checkpoint(folder).tensors[name]
    with tensor.file.open("r+b") as fh:
        fh.seek(tensor.start)
        fh.write(data)


def test_a_sound_checkpoint_passes_and_deep_hashes_every_file(folder: Path) -> None:
    report = verify_path(folder, deep=True)
    assert report.ok, report.summary()
    assert report.format == "safetensors" and report.variant.startswith("custom gpt-oss shape")
    names = [c.name for c in report.checks]
    assert names[:2] == ["spec", "tensors"] and "o200k tokens" in names and "MXFP4 scales" in names
    expected = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    assert report.sha256["model.safetensors"] == expected and "config.json" in report.sha256


def test_a_nan_in_a_float_tensor_is_found_deep(folder: Path) -> None:
    _poke(folder, "model.layers.0.self_attn.q_proj.weight", b"\xc0\x7f")  # a bf16 NaN
    assert verify_path(folder).ok  # the header is fine: only --deep reads the numbers
    report = verify_path(folder, deep=True)
    assert _failed(report) == ("finite floats", BadNumbersError.__name__)
    assert "model.layers.0.self_attn.q_proj.weight" in report.failure.detail  # type: ignore[union-attr]


def test_an_mxfp4_scale_out_of_range_is_found_deep(folder: Path) -> None:
    _poke(folder, "model.layers.0.mlp.experts.down_proj_scales", b"\xff")
    assert _failed(verify_path(folder, deep=True)) == ("MXFP4 scales", BadNumbersError.__name__)


def test_a_missing_tensor_fails_the_inventory(folder: Path) -> None:
    config = json.loads((folder / "config.json").read_text())
    config["num_hidden_layers"] += 1
    config["layer_types"] = [
        *config["layer_types"],
        "sliding_attention" if len(config["layer_types"]) % 2 == 0 else "full_attention",
    ]
    (folder / "config.json").write_text(json.dumps(config))
    report = verify_path(folder)
    assert _failed(report) == ("tensors", TensorInventoryError.__name__)
    assert "lacks" in report.failure.detail  # type: ignore[union-attr]


def test_a_foreign_vocabulary_fails(folder: Path) -> None:
    data = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    vocab = data["model"]["vocab"]
    a, b = next((k for k, v in vocab.items() if v == 1000)), next((k for k, v in vocab.items() if v == 1001))
    vocab[a], vocab[b] = 1001, 1000  # two tokens swapped: another tokenizer
    (folder / "tokenizer.json").write_text(json.dumps(data), encoding="utf-8")
    assert _failed(verify_path(folder)) == ("o200k tokens", VocabularyError.__name__)


def test_a_moved_special_token_fails(folder: Path) -> None:
    data = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    for token in data["added_tokens"]:
        if token["content"] == "<|call|>":
            token["content"] = "<|reserved_200012|>"
    (folder / "tokenizer.json").write_text(json.dumps(data), encoding="utf-8")
    report = verify_path(folder)
    assert _failed(report) == ("harmony special tokens", VocabularyError.__name__)
    assert "<|call|>" in report.failure.detail  # type: ignore[union-attr]


def test_no_tokenizer_fails(folder: Path) -> None:
    (folder / "tokenizer.json").unlink()
    assert _failed(verify_path(folder)) == ("vocabulary", VocabularyError.__name__)


def test_a_template_that_is_not_harmony_fails(folder: Path) -> None:
    (folder / "chat_template.jinja").write_text("{% for m in messages %}<|im_start|>{{ m.content }}{% endfor %}")
    assert _failed(verify_path(folder)) == ("chat template", ChatTemplateError.__name__)


def test_a_folder_that_is_neither_says_what_it_looked_for(tmp_path: Path) -> None:
    report = verify_path(tmp_path)
    assert not report.ok and "nor a checkpoint (config.json with safetensors)" in report.failure.detail  # type: ignore[union-attr]


def test_the_command_checks_a_sha256(folder: Path) -> None:
    digest = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    runner = CliRunner()
    good = runner.invoke(app, ["verify", str(folder), "--sha256", digest])
    assert good.exit_code == 0, good.output
    bad = runner.invoke(app, ["verify", str(folder), "--sha256", "0" * 64])
    assert bad.exit_code == ChecksumError.exit_code, bad.output
