"""The local model store: one folder per model, each with a manifest.

    <data>/models/<name>/manifest.json   name, variant, format, backend, entry,
                                         files (bytes, sha256), source, verified_at
    <data>/models/<name>/<files...>

A model enters the store only whole and verified: files are gathered in a
temporary folder beside the store and renamed into place with the manifest
already written, so a model that is listed is a model that passed verify.
A process killed outright leaves its temporary folder (see fsutil): the
store puts back a model a killed replace had moved aside, clears a name's
leftovers before writing it again, and lists the rest (`leftovers()`) for
`edgeoss list` to show and `edgeoss clean` to remove.

    <data>/models/.staging/<repo>@<commit>/   a pull's downloads, kept for the next pull to resume
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

from edgeoss import __version__, fsutil
from edgeoss.errors import ChecksumError, FileAccessError, ModelNotFoundError, OutputExistsError, UsageError
from edgeoss.paths import paths
from edgeoss.weights.report import Report

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
SCHEMA = 1
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass
class FileEntry:
    path: str  # relative to the model folder, "/" separated
    bytes: int
    sha256: str


@dataclass
class Manifest:
    name: str
    variant: str
    format: str  # "gguf", "onnx-cpu", ...
    backend: str  # the engine that runs it: backends.EngineKind.key
    entry: str  # what the backend opens, relative to the model folder
    files: list[FileEntry]
    source: dict[str, Any] = field(default_factory=dict)
    verified_at: str = ""
    edgeoss_version: str = __version__
    schema: int = SCHEMA

    @property
    def total_bytes(self) -> int:
        return sum(f.bytes for f in self.files)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: object) -> Manifest:
        """A manifest from JSON that may come from anywhere (a bundle on a stick, a
        store edited by hand): ValueError, naming the field, for a wrong type, a path
        that leaves the model's folder, an absurd size or too many files. Fields a
        newer edgeoss adds are ignored."""
        if not isinstance(data, dict):
            raise ValueError("the manifest is not a JSON object")
        text = {key: _field(data, key, str) for key in ("name", "variant", "format", "backend", "entry")}
        check_name_value(text["name"])
        fsutil.relative_path(text["entry"], "entry")
        listed = _field(data, "files", list)
        if len(listed) > MAX_FILES:
            raise ValueError(f"the manifest lists {len(listed):,} files, more than a model has ({MAX_FILES:,} at most)")
        files = [_file_entry(item, i) for i, item in enumerate(listed)]
        schema = data.get("schema", SCHEMA)
        if not _is_int(schema) or not 1 <= schema <= SCHEMA:
            raise ValueError(f"manifest schema {fsutil.shown(schema)} is not one this edgeoss reads (1 to {SCHEMA})")
        return cls(
            **text,
            files=files,
            source=_field(data, "source", dict, {}),
            verified_at=_field(data, "verified_at", str, ""),
            edgeoss_version=_field(data, "edgeoss_version", str, ""),
            schema=schema,
        )


MAX_FILES = 10_000
"""The most files a manifest may list (a split GGUF or an ONNX folder has a handful)."""
MAX_FILE_BYTES = 1 << 44
"""16 TiB: more than any one file of any gpt-oss."""
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _field(data: dict[str, Any], key: str, kind: type, default: Any = ...) -> Any:
    if key not in data:
        if default is ...:
            raise ValueError(f"the manifest has no {key!r}")
        return default
    value = data[key]
    if not isinstance(value, kind):
        raise ValueError(f"the manifest's {key!r} is {type(value).__name__}, not {kind.__name__}")
    return value


def _file_entry(item: object, index: int) -> FileEntry:
    if not isinstance(item, dict):
        raise ValueError(f"file {index} of the manifest is not an object")
    path = fsutil.relative_path(item.get("path"), f"file {index}'s path")
    size = item.get("bytes")
    if not _is_int(size) or not 0 <= size <= MAX_FILE_BYTES:
        raise ValueError(f"{path}: size {fsutil.shown(size)} is not a byte count")
    digest = item.get("sha256")
    if not isinstance(digest, str) or not _SHA256.match(digest):
        raise ValueError(f"{path}: sha256 {fsutil.shown(digest)} is not 64 hex digits")
    return FileEntry(path, size, digest)


def check_name_value(name: str) -> None:
    """ValueError (not a usage error: the name came from a file) for a name the store cannot hold."""
    if not _NAME.match(name):
        raise ValueError(f"model name {fsutil.shown(name)} is not one the store can hold")


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise UsageError(
            f"{name!r} is not a usable model name", hint="use letters, digits, '.', '_' and '-' (128 at most)"
        )
    return name


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()


STAGING = ".staging"
OWNER = ".edgeoss-owner"  # in a staging folder: the pid of the pull writing it


@dataclass(frozen=True)
class Leftover:
    """Something in the store that is not a model: what a stopped command left."""

    path: Path
    what: str  # said to the user
    bytes: int
    resumable: bool  # a pull's downloads: the same pull continues from them


Leftovers = list[Leftover]  # named outside Store, whose own `list` method would shadow the type


class Store:
    def __init__(self, root: Path | None = None) -> None:
        self.root = root or paths().models

    def folder(self, name: str) -> Path:
        return self.root / check_name(name)

    def staging(self, key: str) -> Path:
        return self.root / STAGING / key

    def list(self) -> list[Manifest]:
        if not self.root.is_dir():
            return []
        self._recover()
        out = []
        for child in sorted(self.root.iterdir()):
            if child.name.startswith(".") or not (child / MANIFEST).is_file():
                continue
            try:
                out.append(self._read(child))
            except (OSError, ValueError) as exc:
                log.warning("ignoring %s: unreadable manifest (%s)", child, exc)
        return out

    def _read(self, folder: Path) -> Manifest:
        manifest = Manifest.from_dict(fsutil.read_json(folder / MANIFEST))
        if manifest.name != folder.name:
            # entry_path() finds the files by the name: a manifest naming another
            # folder would point at another model's files.
            raise ValueError(f"the manifest names {fsutil.shown(manifest.name)}, but sits in {folder.name!r}")
        return manifest

    def _recover(self) -> None:
        """Put back every model a killed `--force` replace had moved aside."""
        for leftover in fsutil.leftovers(self.root):
            if leftover.kind == "replaced" and not leftover.live:
                fsutil.recover(self.root / leftover.of)

    def leftovers(self) -> Leftovers:
        """What stopped commands left in the store (their process is gone)."""
        self._recover()
        found = []
        for item in fsutil.leftovers(self.root):
            if item.live:
                continue
            what = {
                "partial": f"a stopped import or pull of {item.of!r}",
                "replaced": f"an old copy of {item.of!r} that a replace set aside",
                "removing": f"a removal of {item.of!r} that was stopped",
            }[item.kind]
            found.append(Leftover(item.path, what, item.bytes, resumable=False))
        staging = self.root / STAGING
        for folder in sorted(staging.iterdir()) if staging.is_dir() else []:
            if folder.is_dir() and not _owner_alive(folder):
                repo, _, commit = folder.name.partition("@")
                what = f"a stopped pull of {repo.replace('--', '/')} ({commit[:12]})"
                found.append(Leftover(folder, what, fsutil.tree_bytes(folder), resumable=True))
        return found

    def clean(self) -> Leftovers:
        """Remove every leftover; return what was removed."""
        removed = self.leftovers()
        for leftover in removed:
            fsutil.remove_path(leftover.path)
        return removed

    def get(self, name: str) -> Manifest:
        self._recover()
        folder = self.folder(name)
        if not (folder / MANIFEST).is_file():
            known = ", ".join(m.name for m in self.list()) or "none"
            raise ModelNotFoundError(f"no model named {name!r} in the store ({known})", hint="see `edgeoss list`")
        try:
            return self._read(folder)
        except (OSError, ValueError) as exc:
            raise FileAccessError(
                f"{folder / MANIFEST} is damaged: {exc}",
                hint=f"remove it with `edgeoss rm {name}`, then pull or import the model again",
            ) from exc

    def verified_loads(self) -> frozenset[str]:
        """Formats of stored models that were checked to load on this machine
        (source.load_check, written by export-onnx and import)."""
        return frozenset(
            m.format
            for m in self.list()
            if isinstance(m.source.get("load_check"), dict) and m.source["load_check"].get("ok")
        )

    def entry_path(self, manifest: Manifest) -> Path:
        return self.folder(manifest.name) / manifest.entry

    def owner_of(self, path: Path) -> Manifest | None:
        """The stored model a path belongs to, if any."""
        try:
            relative = path.absolute().relative_to(self.root.absolute())
        except ValueError:
            return None
        if not relative.parts:
            return None
        try:
            return self.get(relative.parts[0])
        except (ModelNotFoundError, UsageError):
            return None

    def remove(self, name: str) -> int:
        """Remove a stored model, its manifest readable or damaged; the bytes freed."""
        folder = self.folder(name)
        if not (folder / MANIFEST).is_file():
            self.get(name)  # the store's own "no model named" error
        freed = fsutil.tree_bytes(folder)
        # Renamed aside first, so a half-deleted model is never listed.
        fsutil.remove_tree(folder)
        log.info("removed %s", name)
        return freed

    def copy(self, source: str, destination: str) -> Manifest:
        """A second name for a stored model (Ollama's copy): its files hard-linked where
        the disk allows, else copied. It was verified when it arrived; the copy checks
        each file's size against the manifest (hashing a hard link would reread the same bytes)."""
        manifest = self.get(source)
        check_name(destination)
        folder = self.folder(source)

        def gather(tmp: Path) -> None:
            for entry in manifest.files:
                place(folder / entry.path, tmp / entry.path)

        def describe(tmp: Path) -> Manifest:
            for entry in manifest.files:
                if (tmp / entry.path).stat().st_size != entry.bytes:
                    raise ChecksumError(f"{source}/{entry.path} differs from its manifest; verify it first")
            return Manifest.from_dict({**manifest.to_dict(), "source": {**manifest.source, "copied_from": source}})

        return self.add(destination, gather, describe)

    def add(
        self,
        name: str,
        gather: Callable[[Path], None],
        describe: Callable[[Path], Manifest],
        *,
        overwrite: bool = False,
    ) -> Manifest:
        """Create model `name`: `gather(tmp)` puts its files in a temporary
        folder, `describe(tmp)` verifies them and returns the manifest."""
        check_name(name)
        self.root.mkdir(parents=True, exist_ok=True)
        final = self.folder(name)
        if (final / MANIFEST).exists() and not overwrite:
            raise OutputExistsError(f"a model named {name!r} is already in the store", hint="pass --name or --force")
        try:
            with fsutil.atomic_dir(final, overwrite=True) as tmp:
                gather(tmp)
                manifest = describe(tmp)
                manifest.name = name
                (tmp / MANIFEST).write_text(json.dumps(manifest.to_dict(), indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            raise fsutil.write_error(exc, final) from exc
        log.info("stored %s (%s, %d files)", name, manifest.format, len(manifest.files))
        return manifest


def claim(folder: Path) -> None:
    """Mark `folder` (a staging folder) as this process's, so that `clean` leaves it alone while it runs."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / OWNER).write_text(str(os.getpid()), encoding="ascii")


def _owner_alive(folder: Path) -> bool:
    try:
        pid = int((folder / OWNER).read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return False
    return fsutil.pid_alive(pid)


def files_of(folder: Path, report: Report) -> list[FileEntry]:
    """FileEntry for every file a deep verify hashed, relative to `folder`."""
    entries = []
    for name, digest in sorted(report.sha256.items()):
        path = folder / name
        entries.append(FileEntry(name, path.stat().st_size, digest))
    return entries


def place(source: Path, target: Path, on_bytes: Callable[[int], None] | None = None) -> None:
    """Hard-link `source` to `target` when both are on one disk, else copy it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
        if on_bytes is not None:
            on_bytes(source.stat().st_size)
        return
    except OSError:
        pass  # another disk, or a filesystem without hard links
    with source.open("rb") as src, target.open("wb") as dst:
        while chunk := src.read(16 << 20):
            dst.write(chunk)
            if on_bytes is not None:
                on_bytes(len(chunk))
