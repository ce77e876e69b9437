"""What a command killed outright leaves in the store: put back when it was a
model, listed with its size and a way to clean it, removed by `edgeoss clean`,
and never touched while its writer still runs. The states are the ones the
kill leaves (names carry the dead writer's pid); tests/system/test_store_crash_safety.py
gets them by really killing the commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgeoss import fsutil
from edgeoss.cli import app
from edgeoss.errors import OutputExistsError
from edgeoss.weights.store import OWNER, FileEntry, Manifest, Store, claim

runner = CliRunner()


@pytest.fixture(scope="module")
def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(done.stdout)
    assert not fsutil.pid_alive(pid)
    return pid


def stored(store: Store, name: str, content: bytes = b"weights") -> Manifest:
    def gather(tmp: Path) -> None:
        (tmp / "model.gguf").write_bytes(content)

    def describe(tmp: Path) -> Manifest:
        entry = FileEntry("model.gguf", len(content), "0" * 64)
        return Manifest(name, "gpt-oss-20b", "gguf", "llama.cpp", "model.gguf", [entry])

    return store.add(name, gather, describe)


def test_a_replace_killed_between_its_renames_is_put_back(tmp_path: Path, dead_pid: int) -> None:
    """Found by reading atomic_dir: a kill after the old copy was moved aside and before the
    new one was renamed in left the model unlisted, and the next write deleted both."""
    store = Store(tmp_path / "models")
    stored(store, "tiny")
    held = store.root / f".tiny.old-{dead_pid}-abc"
    held.mkdir()
    os.replace(store.folder("tiny"), held / "tiny")
    (store.root / f".tiny.partial-{dead_pid}-def").mkdir()  # the new copy, complete or not

    assert [m.name for m in store.list()] == ["tiny"]
    assert (store.folder("tiny") / "model.gguf").read_bytes() == b"weights"
    assert not held.exists()


def test_a_killed_replace_is_not_overwritten_without_force(tmp_path: Path, dead_pid: int) -> None:
    final = tmp_path / "out"
    final.mkdir()
    (final / "a").write_text("old")
    held = tmp_path / f".out.old-{dead_pid}-x"
    held.mkdir()
    os.replace(final, held / "out")
    with pytest.raises(OutputExistsError), fsutil.atomic_dir(final):
        pass
    assert (final / "a").read_text() == "old"


def test_leftovers_are_listed_and_cleaned(tmp_path: Path, dead_pid: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGEOSS_HOME", str(tmp_path))
    store = Store()
    stored(store, "tiny")
    partial = store.root / f".big.partial-{dead_pid}-x"
    partial.mkdir()
    (partial / "model.gguf").write_bytes(b"x" * 3000)
    removing = store.root / f".old.removing-{dead_pid}-y"
    (removing / "old").mkdir(parents=True)
    download = store.staging("openai--gpt-oss-20b@" + "c" * 40)
    claim(download)
    (download / OWNER).write_text(str(dead_pid))
    (download / "part.gguf").write_bytes(b"y" * 5000)

    found = {item.path: item for item in store.leftovers()}
    assert set(found) == {partial, removing, download}
    assert found[partial].bytes == 3000 and "stopped import or pull of 'big'" in found[partial].what
    assert found[download].resumable and "openai/gpt-oss-20b" in found[download].what

    listed = runner.invoke(app, ["list"])
    assert listed.exit_code == 0
    assert "3 leftover(s)" in listed.stderr and "edgeoss clean" in listed.stderr
    assert "tiny" in listed.stdout
    assert json.loads(runner.invoke(app, ["list", "--json"]).stdout)[0]["name"] == "tiny"  # the JSON stays models only

    cleaned = runner.invoke(app, ["clean", "--json"])
    assert cleaned.exit_code == 0, cleaned.output
    report = json.loads(cleaned.stdout)
    assert report["bytes"] >= 8000 and len(report["removed"]) == 3
    assert not partial.exists() and not removing.exists() and not download.exists()
    assert [m.name for m in store.list()] == ["tiny"]  # never a model
    assert "nothing to clean" in runner.invoke(app, ["clean"]).stdout


def test_a_running_writer_is_left_alone(tmp_path: Path) -> None:
    """This process is alive: its temporary copies and its pull's downloads are not leftovers."""
    store = Store(tmp_path / "models")
    mine = store.root / f".tiny.partial-{os.getpid()}-x"
    mine.mkdir(parents=True)
    download = store.staging("openai--gpt-oss-20b@main")
    claim(download)
    assert store.leftovers() == []
    assert store.clean() == []
    assert mine.exists() and download.exists()
    assert fsutil.remove_stale_partials(store.root / "tiny") == []


def test_a_staging_folder_without_an_owner_is_a_leftover(tmp_path: Path) -> None:
    """One from before pulls marked their downloads: nobody is writing it."""
    store = Store(tmp_path / "models")
    folder = store.staging("openai--gpt-oss-20b@main")
    folder.mkdir(parents=True)
    assert [item.path for item in store.leftovers()] == [folder]


@pytest.mark.parametrize(
    "name",
    [".bashrc", ".tiny.partial-", ".tiny.partial-x-1", "tiny.partial-1-x", ".partial-1-x", ".staging"],
)
def test_other_names_are_not_taken_for_leftovers(tmp_path: Path, name: str) -> None:
    (tmp_path / name).mkdir()
    assert fsutil.leftovers(tmp_path) == []


def test_remove_leaves_no_half_model(tmp_path: Path) -> None:
    store = Store(tmp_path / "models")
    stored(store, "tiny")
    store.remove("tiny")
    assert store.list() == [] and list(store.root.iterdir()) == []
