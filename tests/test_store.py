"""The model store: import (GGUF and ONNX folders), list, rm, and verify by name."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgeoss import errors, importer, onnx_folder, spec
from edgeoss.cli import app
from edgeoss.store import MANIFEST, Store
from edgeoss.verify import verify_path
from gguf_tools import rewrite

runner = CliRunner()


def onnx_layout_double(folder: Path, *, eos: list[int] | None = None, model_type: str = "gpt_oss") -> Path:
    """An ONNX GenAI folder with the real file layout and config, whose graph
    files are placeholder bytes: enough for the folder checks, which do not
    parse ONNX (loading is the ORT engine's job)."""
    folder.mkdir(parents=True)
    config = {
        "model": {
            "type": model_type,
            "vocab_size": spec.VOCAB_SIZE,
            "bos_token_id": spec.STARTOFTEXT,
            "eos_token_id": eos if eos is not None else [spec.RETURN, spec.ENDOFTEXT, spec.CALL],
            "context_length": 131072,
            "decoder": {
                "filename": "model.onnx",
                "num_hidden_layers": 24,
                "session_options": {"provider_options": [{"cuda": {}}]},
            },
        }
    }
    (folder / onnx_folder.CONFIG_FILE).write_text(json.dumps(config))
    # The graph names its external weights file the way ONNX protobuf does.
    location = b"\x0a\x08location\x12" + bytes([len(b"model.onnx.data")]) + b"model.onnx.data"
    (folder / "model.onnx").write_bytes(b"onnx-graph" * 50 + location + b"onnx-graph" * 50)
    (folder / "model.onnx.data").write_bytes(os.urandom(4096))
    (folder / "tokenizer.json").write_text("{}")
    (folder / "tokenizer_config.json").write_text("{}")
    return folder


def test_import_list_verify_rm(tiny_gguf: Path, edgeoss_home: Path) -> None:
    result = runner.invoke(app, ["import", str(tiny_gguf), "--json"])
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.stdout)
    assert manifest["name"] == "tiny" and manifest["format"] == "gguf" and manifest["backend"] == "llama.cpp"
    assert manifest["files"][0]["bytes"] == tiny_gguf.stat().st_size
    assert manifest["source"] == {"kind": "import", "path": str(tiny_gguf)}
    stored = edgeoss_home.resolve() / "data" / "models" / "tiny" / "tiny.gguf"
    assert stored.is_file()

    listing = runner.invoke(app, ["list", "--json"])
    assert [m["name"] for m in json.loads(listing.stdout)] == ["tiny"]
    assert "tiny" in runner.invoke(app, ["list"]).stdout

    verified = runner.invoke(app, ["verify", "tiny", "--deep"])
    assert verified.exit_code == 0, verified.output
    assert "store manifest" in verified.stdout

    again = runner.invoke(app, ["import", str(tiny_gguf)])
    assert again.exit_code == 2 and "already in the store" in again.output
    assert runner.invoke(app, ["import", str(tiny_gguf), "--name", "second"]).exit_code == 0

    removed = runner.invoke(app, ["rm", "tiny"])
    assert removed.exit_code == 0 and not stored.parent.exists()
    assert [m.name for m in Store().list()] == ["second"]
    missing = runner.invoke(app, ["rm", "tiny"])
    assert missing.exit_code == 20 and "no model named 'tiny'" in missing.output


def test_a_stored_file_that_changed_is_caught(tiny_gguf: Path, tmp_path: Path) -> None:
    source = shutil.copy(tiny_gguf, tmp_path / "copy.gguf")
    importer.import_path(Path(source), name="drift")
    stored = Store().entry_path(Store().get("drift"))
    # Same structure, other numbers: only the recorded sha256 can tell.
    rewrite(
        Path(source),
        stored,
        patch=lambda name, data: data.__setitem__(0, data[0] ^ 1) if name == "output.weight" else None,
    )
    report = verify_path(Path("drift"), deep=True)
    assert not report.ok and report.exit_code == errors.ChecksumError.exit_code
    assert "changed since" in report.summary()


def test_import_refuses_a_bad_file_and_stores_nothing(tiny_gguf: Path, tmp_path: Path) -> None:
    bad = rewrite(tiny_gguf, tmp_path / "bad.gguf", drop=("tokenizer.chat_template",))
    result = runner.invoke(app, ["import", str(bad)])
    assert result.exit_code == errors.ChatTemplateError.exit_code
    assert Store().list() == []
    assert not any(Store().root.glob(".*partial*")) if Store().root.exists() else True


def test_import_split_gguf_and_checkpoint_hint(tiny_gguf: Path, tiny_checkpoint: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["import", str(tiny_checkpoint)])
    assert result.exit_code == 2 and "edgeoss convert" in result.output
    assert runner.invoke(app, ["import", str(tmp_path / "absent.gguf")]).exit_code == errors.FileAccessError.exit_code


def test_import_hard_links_on_the_same_disk(tiny_gguf: Path, tmp_path: Path) -> None:
    source = Path(shutil.copy(tiny_gguf, tmp_path / "linked.gguf"))
    manifest = importer.import_path(source, store=Store(tmp_path / "store"))
    stored = Store(tmp_path / "store").entry_path(manifest)
    assert os.stat(stored).st_ino == os.stat(source).st_ino


def test_onnx_folder_verify_and_import(tmp_path: Path) -> None:
    folder = onnx_layout_double(tmp_path / "cuda")
    report = verify_path(folder, deep=True)
    assert report.ok, report.summary()
    assert report.format == "onnx-cuda" and report.variant == "gpt-oss-20b"
    assert set(report.sha256) == {
        "genai_config.json",
        "model.onnx",
        "model.onnx.data",
        "tokenizer.json",
        "tokenizer_config.json",
    }
    manifest = importer.import_path(folder, name="onnx20b")
    assert manifest.backend == "ort-genai" and manifest.entry == "."
    assert (Store().folder("onnx20b") / MANIFEST).is_file()


@pytest.mark.parametrize(
    ("change", "error", "fragment"),
    [
        (lambda f: onnx_layout_double(f, eos=[spec.ENDOFTEXT]), errors.VocabularyError, "lacks [200002, 200012]"),
        (lambda f: onnx_layout_double(f, model_type="phi3"), errors.SpecMismatchError, "not gpt-oss"),
        (lambda f: (onnx_layout_double(f) / "model.onnx.data").unlink(), errors.FileAccessError, "missing"),
        (lambda f: (onnx_layout_double(f) / "model.onnx").write_bytes(b""), errors.FileAccessError, "empty"),
        (
            lambda f: (onnx_layout_double(f) / "genai_config.json").write_text("{not json"),
            errors.StructureError,
            "not valid JSON",
        ),
    ],
)
def test_onnx_folder_problems(tmp_path: Path, change: object, error: type[errors.VerifyError], fragment: str) -> None:
    folder = tmp_path / "onnx"
    change(folder)  # type: ignore[operator]
    report = verify_path(folder)
    assert not report.ok and report.exit_code == error.exit_code
    assert fragment in report.summary()


def test_unreadable_manifest_is_skipped_not_fatal(tiny_gguf: Path) -> None:
    importer.import_path(tiny_gguf, name="good")
    broken = Store().root / "broken"
    broken.mkdir()
    (broken / MANIFEST).write_text("{")
    assert [m.name for m in Store().list()] == ["good"]


def test_bad_names_are_refused(tiny_gguf: Path) -> None:
    for name in ("../escape", ".hidden", "a/b", ""):
        result = runner.invoke(app, ["import", str(tiny_gguf), "--name", name])
        assert result.exit_code == 2, name


def test_split_gguf_verifies_imports_and_is_caught_incomplete(tiny_gguf: Path, tmp_path: Path) -> None:
    rewrite(tiny_gguf, tmp_path / "split.gguf", split_max_tensors=15)
    shards = sorted(tmp_path.glob("split-*.gguf"))
    assert [p.name for p in shards] == [f"split-0000{i}-of-00003.gguf" for i in (1, 2, 3)]
    report = verify_path(shards[0], deep=True)
    assert report.ok, report.summary()
    assert len(report.files) == 3 and len(report.sha256) == 3
    manifest = importer.import_path(shards[0])
    assert manifest.name == "split" and manifest.entry == shards[0].name and len(manifest.files) == 3
    shards[2].unlink()
    broken = verify_path(shards[0])
    assert (
        broken.exit_code == errors.FileAccessError.exit_code and "split-00003-of-00003.gguf missing" in broken.summary()
    )
