"""Writing files so that nothing half-written is ever taken for good.

Everything is written under a temporary name beside the destination and
renamed into place only when complete; an error, Ctrl-C or a full disk
removes the temporary copy. A process killed outright (SIGKILL, power loss)
cannot clean up, so every temporary name carries its writer's pid:

    .NAME.partial-PID-XXXX    a new NAME being written
    .NAME.old-PID-XXXX/NAME   the NAME it replaces, between two renames
    .NAME.removing-PID-XXXX/  a NAME being deleted
    .NAME.work-PID-XXXX/      scratch space of the command writing NAME

`leftovers()` finds those whose writer is gone, `recover()` puts back a NAME
that a killed replace had moved aside, and `remove_stale_partials()` clears
the rest before the next write of the same NAME.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeoss.errors import DiskFullError, EdgeossError, OutputExistsError

_PARTIAL = ".partial-"
_OLD = ".old-"
_REMOVING = ".removing-"
_WORK = ".work-"
_KINDS = {_PARTIAL: "partial", _OLD: "replaced", _REMOVING: "removing", _WORK: "scratch"}
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


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class Leftover:
    """A temporary copy beside a destination: what a stopped write left."""

    path: Path
    kind: str  # "partial": a new copy being written; "replaced": an old copy moved aside; "removing"; "scratch"
    of: str  # the destination's name
    pid: int
    live: bool  # its writer is still running: not a leftover yet, never touched

    @property
    def bytes(self) -> int:
        return tree_bytes(self.path)


def tree_bytes(path: Path) -> int:
    """Bytes of a file, or of every file under a folder (links not followed)."""
    try:
        if not path.is_dir():
            return path.lstat().st_size
        return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())
    except OSError:
        return 0


def temp_name(final: Path, kind: str) -> str:
    """The prefix of a temporary name beside `final` for this process (see the module's docstring)."""
    return f".{final.name}{kind}{os.getpid()}-"


def _parse(name: str) -> tuple[str, str, int] | None:
    """(kind, destination name, pid) of a temporary name, or None for any other name."""
    if not name.startswith("."):
        return None
    for marker, kind in _KINDS.items():
        of, found, rest = name[1:].rpartition(marker)
        if found and of:
            pid = rest.split("-", 1)[0]
            return (kind, of, int(pid)) if pid.isdigit() else None
    return None


def leftovers(folder: Path) -> list[Leftover]:
    """Every temporary copy in `folder`, live ones included (marked)."""
    if not folder.is_dir():
        return []
    found = []
    for child in sorted(folder.iterdir()):
        parsed = _parse(child.name)
        if parsed is not None:
            kind, of, pid = parsed
            found.append(Leftover(child, kind, of, pid, pid_alive(pid)))
    return found


def recover(final: Path) -> bool:
    """Put back `final` if a replace was killed between its two renames
    (the old copy moved aside, the new one not yet in place); True if it did."""
    if final.exists():
        return False
    for leftover in leftovers(final.parent):
        if leftover.kind == "replaced" and leftover.of == final.name and not leftover.live:
            held = leftover.path / final.name
            if held.exists():
                os.replace(held, final)
                shutil.rmtree(leftover.path, ignore_errors=True)
                return True
    return False


def remove_path(path: Path) -> None:
    """Remove a file or a whole folder (a link itself, never what it points to)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def remove_stale_partials(final: Path) -> list[Path]:
    """Clear what runs killed outright (SIGKILL, power loss) left beside `final`:
    a replaced copy is first put back if `final` is missing, then every
    temporary copy whose writer is gone is removed; a live writer's is left alone."""
    recover(final)
    removed = []
    for leftover in leftovers(final.parent):
        if leftover.of == final.name and not leftover.live:
            remove_path(leftover.path)
            removed.append(leftover.path)
    return removed


def remove_tree(folder: Path) -> None:
    """Delete `folder` so that it is gone at once: renamed aside first, then
    removed, so a kill midway leaves a leftover (see leftovers()), never a half folder."""
    trash = Path(tempfile.mkdtemp(prefix=temp_name(folder, _REMOVING), dir=folder.parent))
    os.replace(folder, trash / folder.name)
    shutil.rmtree(trash, ignore_errors=True)


@contextlib.contextmanager
def scratch_dir(final: Path) -> Iterator[Path]:
    """A work folder beside `final` (on its disk, not a small /tmp), removed on exit;
    one a killed run left is removed before the next write of `final`."""
    final.parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=temp_name(final, _WORK), dir=final.parent))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


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
    recover(final)  # before the check: a replace killed midway must not turn into a write without --force
    if final.exists() and not overwrite and (not final.is_dir() or any(final.iterdir())):
        raise OutputExistsError(
            f"{final} already exists and is not an empty folder", hint="choose another path or pass --force"
        )
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(final)
    tmp = Path(tempfile.mkdtemp(prefix=temp_name(final, _PARTIAL), dir=final.parent))
    tmp.chmod(0o777 & ~_umask())  # mkdtemp makes 0700; the result is an ordinary folder
    try:
        yield tmp
        fsync_tree(tmp)
        if final.exists():
            # A kill between these two renames leaves `final` missing: recover() puts the old one back.
            old = Path(tempfile.mkdtemp(prefix=temp_name(final, _OLD), dir=final.parent))
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
    fd, name = tempfile.mkstemp(prefix=temp_name(final, _PARTIAL), dir=final.parent)
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


MAX_RELATIVE_PATH = 1024
"""The longest file path inside a model folder that a manifest, an index or a
Hub listing may name (real ones are tens of characters)."""


def relative_path(value: object, what: str) -> str:
    """A "/"-separated path inside a folder, from untrusted text (a manifest, a
    checkpoint's index, a Hub listing): ValueError for anything that could name
    a file outside it (absolute, a drive, "..", a backslash) or that no file
    system accepts (empty, NUL, absurdly long)."""
    if not isinstance(value, str):
        raise ValueError(f"{what} is {type(value).__name__}, not a file path")
    if not value or len(value) > MAX_RELATIVE_PATH or "\0" in value:
        raise ValueError(f"{what} {shown(value)} is not a usable file path")
    parts = value.split("/")
    if (
        value.startswith("/")
        or "\\" in value
        or (len(value) > 1 and value[1] == ":")
        or any(part in ("", "..") for part in parts)
    ):
        raise ValueError(f"{what} {shown(value)} points outside its folder")
    return value


def shown(value: object, limit: int = 80) -> str:
    """A value from an untrusted file as an error message may quote it: its repr, cut short
    (a hostile field can be megabytes, and the message lands in logs and terminals)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
