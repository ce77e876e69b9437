"""`edgeoss pull` of the tiny GGUF against a local imitation of the Hub
(huggingface_hub does the real transfer): resume, checksums, disk space, the
store (an ONNX folder, offline and unreachable hubs: tests/unit/test_pull_failures.py)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgeoss import errors, fsutil
from edgeoss.cli import app
from edgeoss.weights import pull
from edgeoss.weights.store import Store
from fake_hub import FakeHub, patched_hub

runner = CliRunner()
GGUF_REPO = "ggml-org/gpt-oss-20b-GGUF"
GGUF_FILE = "gpt-oss-20b-mxfp4.gguf"


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeHub]:
    with patched_hub(monkeypatch, tmp_path / "hf-home") as fake:
        yield fake


@pytest.fixture(scope="module")
def gguf_bytes(tiny_gguf: Path) -> bytes:
    return tiny_gguf.read_bytes()


def test_pull_stores_a_verified_model(hub: FakeHub, gguf_bytes: bytes) -> None:
    hub.add_file(GGUF_REPO, GGUF_FILE, gguf_bytes)
    result = runner.invoke(app, ["pull", "20b", "--json"])
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.stdout)
    assert manifest["name"] == "gpt-oss-20b" and manifest["format"] == "gguf"
    # The file is a tiny synthetic model: the manifest says what it is, not what the catalog expected.
    assert manifest["variant"] == "custom"
    assert manifest["source"] == {"kind": "hub", "repo": GGUF_REPO, "revision": FakeHub.commit_sha(GGUF_REPO)}
    assert manifest["files"] == [
        {"path": GGUF_FILE, "bytes": len(gguf_bytes), "sha256": hashlib.sha256(gguf_bytes).hexdigest()}
    ]
    stored = Store().entry_path(Store().get("gpt-oss-20b"))
    assert stored.read_bytes() == gguf_bytes
    assert not (Store().root / ".staging").exists() or not any((Store().root / ".staging").iterdir())


def test_a_transfer_cut_in_the_middle_resumes(hub: FakeHub, gguf_bytes: bytes) -> None:
    cut = 25 * 1024 * 1024 + 1234
    hub.add_file(GGUF_REPO, GGUF_FILE, gguf_bytes, cut_after=cut)
    manifest = pull.pull("20b", progress=False)
    ranges = [r.range_start for r in hub.requests("GET", GGUF_FILE) if r.range_start]
    assert ranges and 0 < ranges[0] <= cut, "the second request must resume from where the first was cut"
    assert Store().entry_path(manifest).read_bytes() == gguf_bytes


def test_a_corrupted_byte_is_caught_and_never_registered(hub: FakeHub, gguf_bytes: bytes) -> None:
    served = hub.add_file(GGUF_REPO, GGUF_FILE, gguf_bytes, corrupt=True)
    result = runner.invoke(app, ["pull", "20b"])
    assert result.exit_code == errors.ChecksumError.exit_code
    assert "does not match the Hub's checksum" in result.output
    assert Store().list() == []
    assert not list(Store().root.rglob(GGUF_FILE)), "the damaged file must be deleted"
    served.corrupt = False
    assert runner.invoke(app, ["pull", "20b"]).exit_code == 0
    assert [m.name for m in Store().list()] == ["gpt-oss-20b"]


def test_free_disk_is_checked_before_downloading(
    hub: FakeHub, gguf_bytes: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub.add_file(GGUF_REPO, GGUF_FILE, gguf_bytes)

    class Usage:
        total, used, free = 10**12, 10**12 - 10**6, 10**6

    monkeypatch.setattr(fsutil.shutil, "disk_usage", lambda path: Usage)
    result = runner.invoke(app, ["pull", "20b"])
    assert result.exit_code == errors.DiskFullError.exit_code and "needs" in result.output
    assert hub.requests("GET", "/resolve/") == []


def test_a_stored_name_is_not_fetched_again(hub: FakeHub, gguf_bytes: bytes) -> None:
    hub.add_file(GGUF_REPO, GGUF_FILE, gguf_bytes)
    assert runner.invoke(app, ["pull", "20b"]).exit_code == 0
    hub.clear_log()
    again = runner.invoke(app, ["pull", "20b"])
    assert again.exit_code == 2 and "already in the store" in again.output
    assert hub.log == []
