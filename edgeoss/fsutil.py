"""Writing files so that nothing half-written is ever taken for good.

Everything is written under a temporary name beside the destination and
renamed into place only when complete; an error, Ctrl-C or a full disk
removes the temporary copy.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from edgeoss.errors import DiskFullError, EdgeossError, OutputExistsError

_PARTIAL = ".partial-"
_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in _DISK_FULL


def write_error(exc: OSError, target: Path) -> EdgeossError:
    """The error to report for an OSError met while writing `target`
    (anything half-written has already been removed by then)."""
    if is_disk_full(exc):
        return DiskFullError(
            f"the disk filled up while writing {target}; nothing was left behind",
            hint="free some space or choose another destination",
        )
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return EdgeossError(
            f"cannot write {target}: {exc.strerror}", hint="choose a folder you can write to, on a writable disk"
        )
    return EdgeossError(f"writing {target} failed: {exc.strerror or exc}")


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def free_bytes(folder: Path) -> tuple[int, Path]:
    """Free space on the disk that holds `folder` (or would: its nearest existing parent)."""
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free, probe


def ensure_free_space(folder: Path, needed: int, what: str) -> None:
    """Refuse before writing when `folder`'s disk cannot hold `needed` bytes."""
    free, probe = free_bytes(folder)
    if free < needed:
        raise DiskFullError(
            f"{what} needs {human_bytes(needed)} but {probe} has {human_bytes(free)} free",
            hint="free some space or choose another destination",
        )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_partials(final: Path) -> list[Path]:
    """Remove temporary copies left beside `final` by runs that were killed
    outright (SIGKILL, power loss); a live writer's copy is left alone."""
    removed = []
    for candidate in final.parent.glob(f".{final.name}{_PARTIAL}*"):
        try:
            pid = int(candidate.name[len(f".{final.name}{_PARTIAL}") :].split("-", 1)[0])
        except ValueError:
            continue
        if not _pid_alive(pid):
            if candidate.is_dir():
                shutil.rmtree(candidate, ignore_errors=True)
            else:
                candidate.unlink(missing_ok=True)
            removed.append(candidate)
    return removed


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def fsync_tree(root: Path) -> None:
    for path in sorted(root.rglob("*")):
        if path.is_file():
            with path.open("rb") as fh:
                os.fsync(fh.fileno())


@contextlib.contextmanager
def atomic_dir(final: Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a fresh temporary folder; on success it becomes `final`.

    `final` may not exist yet or be an empty folder; anything else needs
    `overwrite`, and is replaced only after the new content is complete.
    """
    final = final.absolute()
    if final.exists() and not overwrite and (not final.is_dir() or any(final.iterdir())):
        raise OutputExistsError(
            f"{final} already exists and is not an empty folder", hint="choose another path or pass --force"
        )
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(final)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}{_PARTIAL}{os.getpid()}-", dir=final.parent))
    tmp.chmod(0o777 & ~_umask())  # mkdtemp makes 0700; the result is an ordinary folder
    try:
        yield tmp
        fsync_tree(tmp)
        if final.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", dir=final.parent))
            os.replace(final, old / final.name)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def atomic_file(final: Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside `final`; on success it is fsynced and
    renamed to `final`, on any error or interrupt it is removed."""
    final = final.absolute()
    if final.exists() and not overwrite:
        raise OutputExistsError(f"{final} already exists", hint="choose another path or pass --force")
    if final.is_dir():
        raise OutputExistsError(f"{final} is a folder", hint="give a file name")
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(final)
    fd, name = tempfile.mkstemp(prefix=f".{final.name}{_PARTIAL}{os.getpid()}-", dir=final.parent)
    os.close(fd)
    tmp = Path(name)
    tmp.chmod(0o666 & ~_umask())
    try:
        yield tmp
        with tmp.open("rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class Background:
    """Feed byte chunks, in order, to `consume` on a worker thread.

    File writes and hashlib release the GIL, so a second core writes or hashes
    while the caller reads and computes the next chunk. At most `depth`
    chunks wait, which bounds memory; `drain()` waits for all of them and
    re-raises the worker's error (a full disk, say) in the caller.
    """

    def __init__(self, pool: concurrent.futures.ThreadPoolExecutor, consume: Callable[[bytes], object], depth: int = 4):
        self._pool = pool
        self._consume = consume
        self._depth = depth
        self._pending: list[concurrent.futures.Future[object]] = []

    def feed(self, data: bytes) -> None:
        self._pending.append(self._pool.submit(self._consume, data))
        while len(self._pending) > self._depth:
            self._pending.pop(0).result()

    def drain(self) -> None:
        while self._pending:
            self._pending.pop(0).result()


MAX_JSON_FILE = 64 * 1024 * 1024
"""The largest JSON file edgeoss reads whole (configs and manifests are kilobytes)."""


def loads_json(raw: bytes | str, what: str) -> Any:
    """JSON from untrusted bytes: ValueError (never RecursionError) for anything that is not JSON,
    including nesting deeper than the parser's stack."""
    try:
        return json.loads(raw)
    except RecursionError:
        raise ValueError(f"{what} nests too deeply to be a real file") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"{what} is not UTF-8: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{what} is not valid JSON: {exc}") from None


def read_json(path: Path, limit: int = MAX_JSON_FILE) -> Any:
    """A JSON file, read only when its size is within `limit`: ValueError for one that
    is too large or not JSON, OSError when it cannot be read."""
    size = path.stat().st_size
    if size > limit:
        raise ValueError(f"{path.name} is {size:,} bytes, more than a real one ({limit:,} at most)")
    with path.open("rb") as fh:
        return loads_json(fh.read(limit + 1), path.name)
