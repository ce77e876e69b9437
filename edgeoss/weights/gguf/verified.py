"""Remembered verifications: an unchanged GGUF is not checked again on every load.

`verify` (not deep) reads only a file's header and tensor table, plus its
size: its result is a function of those bytes and of edgeoss's checks. So a
passing result is kept with, for each file, its size and a sha256 of the
bytes before the tensor data (the header; about 12 MB in a real gpt-oss
file), and it is reused only when those are the same again: the reuse is
exactly as strong as checking again, at the cost of one read and hash of the
header instead of a parse. The file's device, inode and modification time
are kept too, and a deep result (every byte read) is reused only when they
are also unchanged, since nothing short of reading every byte again could
prove more. Any change, a new edgeoss, a failing check, or an unreadable
record means a real check.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import hashlib
import logging
from pathlib import Path
from typing import Any

from edgeoss import __version__, remembered
from edgeoss.errors import VerifyError
from edgeoss.weights.gguf import checks, reader
from edgeoss.weights.gguf.reader import GGUFModel
from edgeoss.weights.report import Report

log = logging.getLogger(__name__)

KIND = "gguf-verified"


@functools.cache
def _revision() -> str:
    """What the checks are: edgeoss's version and, from a source tree, the
    code that reads and judges a file (so a changed check is never skipped)."""
    digest = hashlib.sha256(__version__.encode())
    for module in (reader, checks):
        # Frozen into the binary there is no source to read: its version says it.
        with contextlib.suppress(OSError, TypeError):
            digest.update(Path(str(module.__file__)).read_bytes())
    return digest.hexdigest()[:16]


def _key(path: Path) -> str:
    """The file by device and inode, not by name: the store verifies a copy in
    a temporary folder and then renames it into place, and a hard-linked
    import is the same file under two names."""
    st = path.stat()
    return f"{_revision()}|{st.st_dev}:{st.st_ino}"


def _stat(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"dev": st.st_dev, "ino": st.st_ino, "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _header_sha256(path: Path, length: int) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        remaining = length
        while remaining:
            data = fh.read(min(remaining, 1 << 22))
            if not data:
                break
            digest.update(data)
            remaining -= len(data)
    return digest.hexdigest()


def _identity(model: GGUFModel) -> list[dict[str, Any]]:
    return [
        {
            **_stat(f.path),
            "name": f.path.name,
            "header": f.data_offset,
            "header_sha256": _header_sha256(f.path, f.data_offset),
        }
        for f in model.files
    ]


def recall(path: Path, *, deep: bool = False) -> Report | None:
    """The remembered passing report for `path`, if the file is provably the
    one that passed (and was read whole, when `deep`); else None."""
    try:
        record = remembered.load(KIND, _key(path))
        if record is None:
            return None
        if deep and not record["deep"]:
            return None
        shards = reader.split_paths(path)  # by the name now: the record follows a renamed file
        if len(shards) != len(record["files"]):
            return None
        for shard, f in zip(shards, record["files"], strict=True):
            now = _stat(shard)
            if now["size"] != f["size"]:
                return None
            if deep and now != {k: f[k] for k in now}:
                return None
            if not 0 < f["header"] <= f["size"] or _header_sha256(shard, f["header"]) != f["header_sha256"]:
                return None
        report = Report.from_dict(record["report"])
    except (OSError, KeyError, TypeError, ValueError, VerifyError) as exc:
        log.debug("not reusing the verification of %s: %s", path, exc)
        return None
    if not report.ok:
        return None
    report.remembered = str(record.get("at", "earlier"))
    return report


def verify(path: Path, *, deep: bool = False, sha256: str | None = None, fresh: bool = False) -> Report:
    """The verification of the GGUF at `path`: remembered when the file is
    unchanged since it passed (unless `fresh`, or a `sha256` is to be
    compared), else checked now and, when it passes, remembered."""
    if not fresh and sha256 is None and (known := recall(path, deep=deep)) is not None:
        log.info("%s: %s", path.name, known.summary())
        return known
    try:
        key = _key(path)
        before = [_stat(p) for p in reader.split_paths(path)]
    except (OSError, VerifyError):
        key, before = "", []
    report, model = checks.verify_read(path, deep=deep, sha256=sha256)
    if not report.ok or model is None or not key:
        if key:
            remembered.forget(KIND, key)
        return report
    try:
        identity = _identity(model)
        # A file rewritten while it was checked is not the file that passed.
        if [{k: f[k] for k in s} for f, s in zip(identity, before, strict=True)] != before:
            return report
    except (OSError, ValueError) as exc:
        log.debug("not remembering the verification of %s: %s", path, exc)
        return report
    at = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    remembered.save(KIND, key, {"files": identity, "deep": report.deep, "report": report.to_dict(), "at": at})
    return report
