"""Every field of every JSON document edgeoss reads from a model folder, given
every hostile value: a generated corpus.

test_json_corpus.py damages the files as a whole (too deep, too large, not
UTF-8); this one keeps them well-formed JSON and attacks the fields one by
one. For each document (a checkpoint's config.json, its index's weight_map, a
safetensors header, an ONNX folder's genai_config.json, a store or bundle
manifest) every field is replaced in turn by each value of HOSTILE, removed,
and joined by an unknown sibling. Each reader must end in its own failure
class (or accept the document, where the value is harmless) within the time
limit: never another exception type, never a hang, never a file outside the
folder opened.
"""

from __future__ import annotations

import copy
import json
import shutil
import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from edgeoss import errors
from edgeoss.weights import importer, synth
from edgeoss.weights.checkpoint import INDEX_FILE, SINGLE_FILE, open_checkpoint
from edgeoss.weights.onnx import checks as onnx_checks
from edgeoss.weights.store import MANIFEST, Store
from onnx_layout import onnx_layout_double

TIME_LIMIT_S = 1.0
"""Per document: each is a few kilobytes, and every reader bounds before it loops."""

MAX_MESSAGE = 1000
"""The longest error message a hostile field may cause."""

OUTSIDE = "../outside.safetensors"
"""A file beside the model's folder that a path in a hostile document names: it must never be opened."""

HOSTILE: dict[str, Any] = {
    "null": None,
    "true": True,
    "zero": 0,
    "one": 1,
    "negative": -1,
    "2^31": 2**31,
    "2^63": 2**63,
    "10^400": 10**400,
    "infinity": float("inf"),
    "nan": float("nan"),
    "fraction": 0.5,
    "empty": "",
    "absurd-string": "x" * 2_000_000,
    "nul": "model\0.gguf",
    "traversal": OUTSIDE,
    "absolute": "/etc/passwd",
    "backslash": "..\\outside",
    "list": [],
    "list-of-lists": [[1], [2]],
    "long-list": list(range(200_000)),
    "object": {},
    "object-of-lists": {"a": [1], "b": {"c": []}},
}

Path_ = tuple[str | int, ...]


def _paths(doc: Any, width: int, prefix: Path_ = (), depth: int = 4) -> Iterator[Path_]:
    """Every field down to `depth`: the first `width` of each object and the first
    two items of each list (a safetensors header's tensors are alike: a few stand
    for the rest)."""
    if depth == 0:
        return
    items: list[tuple[str | int, Any]]
    if isinstance(doc, dict):
        items = list(doc.items())[:width]
    elif isinstance(doc, list):
        items = list(enumerate(doc))[:2]
    else:
        return
    for key, value in items:
        yield (*prefix, key)
        yield from _paths(value, width, (*prefix, key), depth - 1)


def _variants(doc: Any, width: int) -> Iterator[tuple[str, Any]]:
    for path in _paths(doc, width):
        where = "/".join(map(str, path))
        for label, value in HOSTILE.items():
            yield f"{where}={label}", _set(doc, path, value)
        yield f"{where} removed", _set(doc, path, _REMOVE)
    for label, value in HOSTILE.items():
        yield f"unknown field={label}", {**doc, "an_unknown_field": value} if isinstance(doc, dict) else doc


_REMOVE = object()


def _set(doc: Any, path: Path_, value: Any) -> Any:
    out = copy.deepcopy(doc)
    node = out
    for key in path[:-1]:
        node = node[key]
    if value is _REMOVE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return out


def _check_corpus(
    doc: Any, write: Callable[[Any], None], read: Callable[[], object], ok: tuple[type, ...], width: int = 40
) -> None:
    """Every variant of `doc`, written and read: each read returns or raises one of `ok`, in time."""
    failures: list[str] = []
    count = 0
    for label, variant in _variants(doc, width):
        count += 1
        write(variant)
        started = time.monotonic()
        try:
            read()
        except ok as exc:
            # A clear reason: never the hostile value itself (megabytes, into logs and terminals).
            if len(str(exc)) > MAX_MESSAGE:
                failures.append(f"{label}: a message of {len(str(exc)):,} characters")
        except Exception as exc:  # the failure this test exists to find
            failures.append(f"{label}: {type(exc).__name__}: {str(exc)[:160]}")
        elapsed = time.monotonic() - started
        if elapsed > TIME_LIMIT_S:
            failures.append(f"{label}: took {elapsed:.2f} s")
    assert count > 100, "the corpus is too small to mean anything"
    assert not failures, f"{len(failures)} of {count} documents:\n" + "\n".join(failures[:40])


def _dump(doc: Any) -> str:
    return json.dumps(doc)  # allow_nan: Python's json reads NaN and Infinity, so a hostile file may hold them


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[Path]:
    """A folder inside tmp_path, beside a file that no reader may open: each test
    checks the bait's access time never moved (it is read only through a path
    that leaves the folder)."""
    bait = tmp_path / "outside.safetensors"
    bait.write_bytes(b"\xff" * 64)  # were it parsed, a header length past any file
    folder = tmp_path / "model"
    yield folder
    assert bait.read_bytes() == b"\xff" * 64


def _copy_of(source: Path, folder: Path) -> Path:
    shutil.copytree(source, folder)
    return folder


def test_checkpoint_config_fields(tiny_checkpoint: Path, guarded: Path) -> None:
    folder = _copy_of(tiny_checkpoint, guarded)
    config = json.loads((folder / "config.json").read_text())
    _check_corpus(
        config,
        lambda doc: (folder / "config.json").write_text(_dump(doc)),
        lambda: open_checkpoint(folder),
        (errors.CheckpointError,),
    )


@pytest.fixture(scope="module")
def sharded_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    hp = synth.hparams_for("tiny", layers=1, experts=4)
    out = tmp_path_factory.mktemp("sharded") / "sharded"
    return synth.write_checkpoint(out, synth.plan(hp, max_shard_bytes=20_000_000))


def test_checkpoint_index_fields(sharded_checkpoint: Path, guarded: Path) -> None:
    folder = _copy_of(sharded_checkpoint, guarded)
    index = json.loads((folder / INDEX_FILE).read_text())
    index["weight_map"] = dict(list(index["weight_map"].items())[:3]) | index["weight_map"]
    _check_corpus(
        index,
        lambda doc: (folder / INDEX_FILE).write_text(_dump(doc)),
        lambda: open_checkpoint(folder),
        (errors.CheckpointError,),
    )


def test_safetensors_header_fields(tiny_checkpoint: Path, guarded: Path) -> None:
    folder = _copy_of(tiny_checkpoint, guarded)
    path = folder / SINGLE_FILE
    with path.open("rb") as fh:
        (length,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(length))
    data_bytes = path.stat().st_size - 8 - length

    def write(doc: Any) -> None:
        # Only the header is read: the data stays the right size, sparse (a 50 MB rewrite per variant is minutes).
        encoded = _dump(doc).encode()
        with path.open("wb") as fh:
            fh.write(struct.pack("<Q", len(encoded)) + encoded)
            fh.truncate(8 + len(encoded) + data_bytes)

    # The metadata and the first three tensors: the rest are alike.
    _check_corpus(header, write, lambda: open_checkpoint(folder), (errors.CheckpointError,), width=4)


def test_onnx_genai_config_fields(guarded: Path) -> None:
    folder = onnx_layout_double(guarded)
    config = json.loads((folder / onnx_checks.CONFIG_FILE).read_text())

    def read() -> None:
        report = onnx_checks.verify(folder)
        if not report.ok:
            raise report.error()

    _check_corpus(
        config, lambda doc: (folder / onnx_checks.CONFIG_FILE).write_text(_dump(doc)), read, (errors.VerifyError,)
    )


def test_store_manifest_fields(tmp_path: Path) -> None:
    importer.import_path(onnx_layout_double(tmp_path / "src"), name="m")
    path = Store().folder("m") / MANIFEST
    manifest = json.loads(path.read_text())

    def read() -> None:
        listed = Store().list()
        try:
            got = Store().get("m")
        except errors.FileAccessError:
            assert listed == []  # a damaged manifest is left out of the list, and get says why
            return
        assert listed == [got]
        entry = Store().entry_path(got).resolve()
        assert entry.is_relative_to(Store().folder("m").resolve()), "a manifest's entry left its folder"

    _check_corpus(manifest, lambda doc: path.write_text(_dump(doc)), read, ())


def test_bundled_manifest_fields(tmp_path: Path) -> None:
    importer.import_path(onnx_layout_double(tmp_path / "src"), name="m")
    stick = tmp_path / "stick" / "m"
    shutil.copytree(Store().folder("m"), stick)
    manifest = json.loads((stick / MANIFEST).read_text())

    def read() -> None:
        try:
            importer.import_path(stick, name="arrived", overwrite=True)
        finally:
            for stored in Store().list():
                folder = Store().folder(stored.name).resolve()
                assert Store().entry_path(stored).resolve().is_relative_to(folder)

    _check_corpus(
        manifest,
        lambda doc: (stick / MANIFEST).write_text(_dump(doc)),
        read,
        (errors.FileAccessError, errors.VerifyError, errors.UsageError),
    )
