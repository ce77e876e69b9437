"""Remembered verifications (weights/gguf/verified.py), the reader's one-pass
string arrays, and the remembered decode thread count: a remembered result is
reused only for the very bytes that passed, and anything else is checked."""

from __future__ import annotations

import os
import shutil
import struct
from pathlib import Path

import pytest

from edgeoss import constants, remembered
from edgeoss.discover import load
from edgeoss.engines.llamacpp import threads
from edgeoss.errors import StructureError
from edgeoss.weights.gguf import checks, verified
from edgeoss.weights.gguf.reader import _Cursor, read_model


@pytest.fixture
def model(tiny_gguf: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "model.gguf"
    shutil.copyfile(tiny_gguf, copy)
    return copy


def _count_checks(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    calls: list[Path] = []
    real = checks.verify_read

    def counting(path: Path, **kwargs: object) -> object:
        calls.append(path)
        return real(path, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(checks, "verify_read", counting)
    return calls


def test_an_unchanged_file_is_checked_once(model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _count_checks(monkeypatch)
    first = verified.verify(model)
    again = verified.verify(model)
    assert first.ok and again.ok
    assert len(calls) == 1
    assert not first.remembered and again.remembered
    assert "remembered" in again.summary()
    assert [c.name for c in again.checks] == [c.name for c in first.checks]
    # fresh (what `edgeoss verify` asks for) always checks
    assert verified.verify(model, fresh=True).ok and len(calls) == 2


def test_a_changed_header_is_checked_again(model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert verified.verify(model).ok
    calls = _count_checks(monkeypatch)
    data = bytearray(model.read_bytes())
    at = data.index(b"gpt-oss", 64)
    data[at : at + 7] = b"gpt-xyz"  # same size, same inode after the write
    stat = model.stat()
    with model.open("r+b") as fh:
        fh.write(data)
    os.utime(model, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # even a preserved mtime does not hide it
    report = verified.verify(model)
    assert len(calls) == 1
    assert not report.ok
    # and the failure forgot the old pass
    assert verified.recall(model) is None


def test_a_changed_size_is_checked_again(model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert verified.verify(model).ok
    calls = _count_checks(monkeypatch)
    with model.open("ab") as fh:
        fh.write(b"\0" * 32)
    verified.verify(model)
    assert len(calls) == 1


def test_a_deep_result_needs_an_untouched_file(model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert verified.verify(model).ok
    assert verified.recall(model, deep=True) is None  # a header check proves nothing about the data
    deep = verified.verify(model, deep=True)
    assert deep.ok and deep.sha256
    assert verified.recall(model, deep=True) is not None
    # Tensor data rewritten in place: the header is the same, the modification time is not.
    with model.open("r+b") as fh:
        fh.seek(-64, os.SEEK_END)
        fh.write(b"\xff" * 64)
    assert verified.recall(model, deep=True) is None
    assert verified.recall(model) is not None  # the header check still holds: it never read the data


def test_the_record_follows_the_file_not_its_name(model: Path, tmp_path: Path) -> None:
    assert verified.verify(model).ok
    moved = tmp_path / "moved.gguf"
    model.rename(moved)
    assert verified.recall(moved) is not None
    other = tmp_path / "other.gguf"
    shutil.copyfile(moved, other)  # a new inode: checked on its own
    assert verified.recall(other) is None


def test_a_damaged_record_means_a_real_check(model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert verified.verify(model).ok
    folder = next(Path(os.environ[constants.ENV_HOME]).rglob(verified.KIND))
    for record in folder.iterdir():
        record.write_text('{"key": "x", "value": {"files": 3}}')
    calls = _count_checks(monkeypatch)
    assert verified.verify(model).ok
    assert len(calls) == 1


def test_a_record_that_claims_a_pass_for_other_bytes_is_not_believed(model: Path) -> None:
    assert verified.verify(model).ok
    key = verified._key(model)
    record = remembered.load(verified.KIND, key)
    assert record is not None
    record["files"][0]["header_sha256"] = "0" * 64
    remembered.save(verified.KIND, key, record)
    assert verified.recall(model) is None


def test_a_failing_file_is_never_remembered(tmp_path: Path) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 100)
    assert not verified.verify(bad).ok
    assert verified.recall(bad) is None


# ---------------------------------------------------------------- the reader's string arrays


def _strings(items: list[bytes]) -> bytes:
    return b"".join(struct.pack("<Q", len(i)) + i for i in items)


def test_string_arrays_keep_newlines_and_empty_items() -> None:
    items = [b"a", b"", b"line\nbreak", "é".encode(), b"\n"]
    buf = _strings(items)
    cur = _Cursor(buf, "t", len(buf))
    assert cur.strings(len(items), "x") == [i.decode() for i in items]
    assert cur.pos == len(buf)


def test_string_arrays_refuse_bad_items() -> None:
    not_utf8 = _strings([b"ok", b"\xff\xfe"])
    with pytest.raises(StructureError, match="not UTF-8"):
        _Cursor(not_utf8, "t", len(not_utf8)).strings(2, "x")
    huge = _strings([b"ok"]) + struct.pack("<Q", 2**62)
    with pytest.raises(StructureError, match="claims"):
        _Cursor(huge, "t", len(huge)).strings(2, "x")
    short = _strings([b"ok", b"abcdef"])[:-2]
    with pytest.raises(StructureError, match="ends inside"):
        _Cursor(short, "t", len(short)).strings(2, "x")


def test_the_bulk_reader_reads_the_vocabulary_as_it_is(tiny_gguf: Path) -> None:
    import gguf

    ours = read_model(tiny_gguf).metadata
    theirs = gguf.GGUFReader(tiny_gguf)
    for key in ("tokenizer.ggml.tokens", "tokenizer.ggml.merges"):
        assert ours[key] == theirs.fields[key].contents()


# ---------------------------------------------------------------- decode threads


def test_thread_candidates_and_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threads.psutil, "cpu_count", lambda logical=True: 16 if logical else 8)
    assert threads.default_threads() == 8
    assert threads.candidates() == [4, 8, 16]
    monkeypatch.setattr(threads.psutil, "cpu_count", lambda logical=True: 2 if logical else None)
    assert threads.default_threads() == 2  # physical unknown: the logical count


def test_a_remembered_thread_count_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threads.psutil, "cpu_count", lambda logical=True: 4)
    remembered.save(threads.KIND, "k", {"threads": 3})
    assert threads.remembered_threads("k") == 3
    remembered.save(threads.KIND, "k", {"threads": 64})  # another machine's, or damage
    assert threads.remembered_threads("k") is None


def test_edgeoss_threads_is_read_strictly(monkeypatch: pytest.MonkeyPatch) -> None:
    for value, expected in (("6", 6), ("0", None), ("-2", None), ("many", None), ("99999", None)):
        monkeypatch.setenv(constants.ENV_THREADS, value)
        assert constants.threads() == expected


def test_other_programs_load_is_measured_apart_from_our_own() -> None:
    """Thread counts timed while other programs are busy are not remembered:
    the measure of 'busy' must see another process and not this one."""
    import subprocess
    import sys
    import time

    with load.OtherLoad() as ours:
        end = time.perf_counter() + 0.6
        while time.perf_counter() < end:
            pass
    spin = "import time\nend = time.time() + 5\nwhile time.time() < end: pass"
    spinners = [subprocess.Popen([sys.executable, "-c", spin]) for _ in range(max(1, threads.logical_cpus() // 2))]
    try:
        time.sleep(0.3)
        with load.OtherLoad() as theirs:
            time.sleep(0.6)
    finally:
        for spinner in spinners:
            spinner.kill()
    assert theirs.share > load.QUIET_SHARE  # about half of the CPUs
    assert theirs.share > ours.share
