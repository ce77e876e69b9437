"""`edgeoss import`: bring a GGUF (one file or split), an ONNX Runtime GenAI
folder, or a model folder of a bundle (`edgeoss bundle`) from disk or a USB
stick into the store, verified on arrival; a bundled model's files must
also match the sha256 its manifest recorded.

The source is checked first (headers only, so a wrong file is refused before
gigabytes move), then hard-linked when it is on the store's disk or copied,
then the stored copy is verified byte for byte and its sha256 recorded.
A DirectML folder is also loaded on DirectML, and the answer recorded: the
planner plans DirectML only for a model that loaded.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgeoss import backends, fsutil, spec
from edgeoss.errors import ChecksumError, FileAccessError, UsageError
from edgeoss.weights.gguf import verified
from edgeoss.weights.onnx import checks as onnx_checks
from edgeoss.weights.report import Report
from edgeoss.weights.store import MANIFEST, Manifest, Store, files_of, now, place

_SPLIT_SUFFIX = re.compile(r"-\d{5}-of-\d{5}$")


def default_name(path: Path) -> str:
    stem = path.name.removesuffix(".gguf") if path.is_file() else path.name
    return _SPLIT_SUFFIX.sub("", stem).lower() or "model"


def _bundled(path: Path) -> Manifest | None:
    """The manifest of a model folder copied from a store or a bundle, if `path` is one."""
    if not (path.is_dir() and (path / MANIFEST).is_file()):
        return None
    try:
        return Manifest.from_dict(fsutil.read_json(path / MANIFEST))
    except (OSError, ValueError) as exc:
        raise FileAccessError(f"{path / MANIFEST} is not a readable edgeoss manifest: {exc}") from exc


def _checked(report: Report) -> Report:
    if not report.ok:
        raise report.error()
    return report


def import_path(
    path: Path,
    *,
    name: str | None = None,
    store: Store | None = None,
    overwrite: bool = False,
    on_bytes: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
    origin: dict[str, str] | None = None,
) -> Manifest:
    store = store or Store()
    path = path.absolute()
    if not path.exists():
        raise FileAccessError(f"{path} does not exist")
    expected: dict[str, str] = {}
    bundled = _bundled(path)
    if bundled is not None:
        # A model folder from a bundle or another store: import its entry, and
        # hold every file to the sha256 its manifest recorded.
        entry_path = path / bundled.entry
        prefix = Path(bundled.entry) if entry_path.is_dir() else Path(bundled.entry).parent
        # from_dict holds every path inside the folder; a file outside the entry's
        # folder belongs to no model edgeoss made, and is a damaged manifest.
        outside = [f.path for f in bundled.files if not Path(f.path).is_relative_to(prefix)]
        if outside:
            raise FileAccessError(f"{path / MANIFEST} lists {outside[0]}, outside its entry {bundled.entry}")
        expected = {Path(f.path).relative_to(prefix).as_posix(): f.sha256 for f in bundled.files}
        name = name if name is not None else bundled.name
        origin = origin or {"kind": "bundle", "path": str(path), "verified_at": bundled.verified_at}
        path = entry_path
    if path.is_dir():
        if not (path / onnx_checks.CONFIG_FILE).is_file():
            hint = "to import an original checkpoint, convert it first: edgeoss convert"
            if (path / "config.json").is_file():
                raise UsageError(f"{path} is a safetensors checkpoint, not a runnable model", hint=hint)
            raise FileAccessError(f"{path} holds neither a GGUF nor {onnx_checks.CONFIG_FILE}")
        source = _checked(onnx_checks.verify(path))
        sources = {
            p.relative_to(path).as_posix(): p
            for p in onnx_checks.model_files(path)
            if p.name != MANIFEST or bundled is None
        }
        entry = "."
    else:
        source = _checked(verified.verify(path, fresh=True))
        sources = {Path(p).name: Path(p) for p in source.files}
        entry = Path(source.files[0]).name
    if on_total is not None:
        on_total(sum(p.stat().st_size for p in sources.values()))

    def gather(tmp: Path) -> None:
        for relative, src in sources.items():
            place(src, tmp / relative, on_bytes)

    def describe(tmp: Path) -> Manifest:
        target = tmp / entry
        if entry == ".":
            stored = onnx_checks.verify(target, deep=True)
        else:
            stored = verified.verify(target, deep=True, fresh=True)
        _checked(stored)
        changed = sorted(f for f, digest in expected.items() if stored.sha256.get(f) != digest)
        if changed:
            raise ChecksumError(
                f"{', '.join(changed)} differ from the bundled manifest: the copy is damaged; nothing was stored",
                hint="copy the bundle again (sha256sum -c SHA256SUMS in its folder shows which files)",
            )
        source: dict[str, Any] = dict(origin or {"kind": "import", "path": str(path)})
        if stored.format == "onnx-dml":
            # The planner uses DirectML only for a model that loaded on it here.
            from edgeoss.weights.onnx.load_check import check

            source["load_check"] = check(target, "dml").to_dict()
        return Manifest(
            name="",
            variant=stored.variant if stored.variant in spec.VARIANTS else "custom",
            format=stored.format,
            backend=(backends.engine_of_format(stored.format) or backends.LLAMA_CPP).key,
            entry=entry,
            files=files_of(tmp, stored),
            source=source,
            verified_at=now(),
        )

    return store.add(default_name(path) if name is None else name, gather, describe, overwrite=overwrite)
