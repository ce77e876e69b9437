"""The model store on the tiny GGUF: import, list, rm, and verify by name (ONNX
folders: tests/unit/test_store_onnx.py)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from typer.testing import CliRunner

from edgeoss import errors
from edgeoss.cli import app
from edgeoss.weights import importer
from edgeoss.weights.store import MANIFEST, Store
from edgeoss.weights.verify import verify_path
from gguf_tools import rewrite

runner = CliRunner()


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
