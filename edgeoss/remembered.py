"""Facts edgeoss measured once and keeps: a file's verification, the
machine's memory bandwidth, the fastest thread count for a model.

Each fact is a small JSON record in the cache folder, under its kind and a
key the caller derives from everything the fact depends on; a record that
cannot be read, is damaged or is stale is simply absent (the fact is
measured again), so nothing here can make a command fail. Writes are
atomic: a killed process leaves the old record or the new one, never half.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
from pathlib import Path
from typing import Any

from edgeoss import fsutil
from edgeoss.errors import EdgeossError
from edgeoss.paths import paths

log = logging.getLogger(__name__)

MAX_RECORD = 1024 * 1024
"""The largest record read back (real ones are a few kilobytes)."""

_KIND = re.compile(r"^[a-z][a-z0-9-]{0,31}$")


def _file(kind: str, key: str) -> Path:
    if not _KIND.match(kind):
        raise ValueError(f"bad record kind {kind!r}")
    name = hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
    return paths().cache / "remembered" / kind / f"{name}.json"


def load(kind: str, key: str) -> dict[str, Any] | None:
    """The record saved under (kind, key), or None when there is none usable."""
    path = _file(kind, key)
    try:
        record = fsutil.read_json(path, MAX_RECORD)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.debug("ignoring the remembered %s at %s: %s", kind, path, exc)
        return None
    if not isinstance(record, dict) or record.get("key") != key or not isinstance(record.get("value"), dict):
        return None
    value: dict[str, Any] = record["value"]
    return value


def save(kind: str, key: str, value: dict[str, Any]) -> None:
    """Keep `value` under (kind, key); a failure (read-only home, full disk) is logged, not raised."""
    path = _file(kind, key)
    data = json.dumps({"key": key, "value": value}, sort_keys=True).encode("utf-8")
    try:
        with fsutil.atomic_file(path, overwrite=True) as tmp:
            tmp.write_bytes(data)
    except (OSError, EdgeossError) as exc:
        log.debug("could not remember %s at %s: %s", kind, path, exc)


def forget(kind: str, key: str) -> None:
    with contextlib.suppress(OSError):
        _file(kind, key).unlink()
