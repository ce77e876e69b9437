"""`edgeoss bundle OUT_DIR [MODEL]`: a folder (a USB stick) from which an
offline machine installs edgeoss and a model.

    OUT_DIR/
      edgeoss              the binary (onefile), or edgeoss/ (onedir)
      models/NAME/         the stored model: its files and manifest.json
      SHA256SUMS           every file, for `sha256sum -c`
      install.sh           Linux and macOS: binary to ~/.local, then `edgeoss import`
      install.cmd          Windows: the same under %LOCALAPPDATA%
      README.txt

The model's bytes are hashed while they are copied and must match its
manifest; the folder takes its name only when complete. On arrival,
`edgeoss import OUT_DIR/models/NAME` verifies the model again and checks
every file against the bundled manifest, so a damaged stick is caught there.

    python -m edgeoss.weights.bundle OUT_DIR [MODEL] [--binary PATH]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import stat
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edgeoss import fsutil
from edgeoss.errors import ChecksumError, EdgeossError, UsageError
from edgeoss.weights.store import MANIFEST, Manifest, Store

CHUNK = 16 << 20

INSTALL_SH = """#!/bin/sh
# Install edgeoss from this folder and import the models in it, verified on arrival.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
bin="$HOME/.local/bin"
mkdir -p "$bin"
if [ -d "$here/edgeoss" ]; then
    dest="$HOME/.local/lib/edgeoss"
    rm -rf "$dest" && mkdir -p "$dest"
    cp -R "$here/edgeoss/." "$dest/"
    ln -sf "$dest/edgeoss" "$bin/edgeoss"
elif [ -f "$here/edgeoss" ]; then
    cp "$here/edgeoss" "$bin/edgeoss.new" && chmod +x "$bin/edgeoss.new" && mv "$bin/edgeoss.new" "$bin/edgeoss"
fi
for model in "$here"/models/*/; do
    [ -f "$model/manifest.json" ] && "$bin/edgeoss" import "$model" --force
done
echo "edgeoss is in $bin; start it with: edgeoss serve   (or edgeoss tray)"
"""

INSTALL_CMD = r"""@echo off
rem Install edgeoss from this folder and import the models in it, verified on arrival.
setlocal
set "here=%~dp0"
set "dest=%LOCALAPPDATA%\Programs\edgeoss"
if not exist "%dest%" mkdir "%dest%"
if exist "%here%edgeoss\" (
    xcopy /e /i /y /q "%here%edgeoss" "%dest%" >nul
) else (
    copy /y "%here%edgeoss.exe" "%dest%\edgeoss.exe" >nul
)
for /d %%m in ("%here%models\*") do "%dest%\edgeoss.exe" import "%%m" --force || exit /b 1
echo edgeoss is in %dest%; start it with: edgeoss serve   (or edgeoss tray)
"""

README = """edgeoss offline bundle

Model: {model} ({variant}, {format}, {size:.2f} GB), verified {verified}
Made by edgeoss {version}.

Install on a machine without a network:
  Linux, macOS:  sh install.sh
  Windows:       install.cmd
Both copy the edgeoss binary and import the model; the import checks every
file against the manifest in models/{model}/ and refuses a damaged copy.
Check the whole folder by hand:  sha256sum -c SHA256SUMS
"""


@dataclass(frozen=True)
class Bundled:
    folder: Path
    manifest: Manifest
    binary: Path | None
    total_bytes: int


def running_binary() -> Path | None:
    """The edgeoss binary this process runs from: the onefile, or the onedir folder."""
    if not getattr(sys, "frozen", False):
        return None
    exe = Path(sys.executable)
    meipass = Path(getattr(sys, "_MEIPASS", exe.parent))
    return exe.parent if meipass.parent == exe.parent else exe


def _copy_hashed(src: Path, dst: Path, on_bytes: Callable[[int], None] | None) -> str:
    digest = hashlib.sha256()
    dst.parent.mkdir(parents=True, exist_ok=True)
    with src.open("rb") as fin, dst.open("wb") as fout:
        while chunk := fin.read(CHUNK):
            digest.update(chunk)
            fout.write(chunk)
            if on_bytes is not None:
                on_bytes(len(chunk))
    shutil.copystat(src, dst)
    return digest.hexdigest()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def bundle(
    out: Path,
    model: str | None = None,
    *,
    binary: Path | None = None,
    store: Store | None = None,
    overwrite: bool = False,
    on_bytes: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> Bundled:
    from edgeoss import __version__
    from edgeoss.runtime import choose as models

    store = store or Store()
    if model is not None and Path(model).exists() and store.owner_of(Path(model)) is None:
        raise UsageError(f"{model} is a path; bundle takes a stored model", hint=f"edgeoss import {model} first")
    chosen = models.choose(model, store=store)
    manifest = chosen.manifest
    assert manifest is not None
    binary = binary or running_binary()
    if binary is not None and not binary.exists():
        raise UsageError(f"--binary {binary} does not exist")
    source = store.folder(manifest.name)
    binary_bytes = 0
    if binary is not None:
        binary_bytes = sum(p.stat().st_size for p in _tree(binary))
    total = manifest.total_bytes + binary_bytes
    if on_total is not None:
        on_total(total)
    fsutil.ensure_free_space(out.absolute().parent, total + (16 << 20), f"the bundle of {manifest.name}")
    sums: dict[str, str] = {}
    try:
        with fsutil.atomic_dir(out, overwrite=overwrite) as tmp:
            for entry in manifest.files:
                relative = f"models/{manifest.name}/{entry.path}"
                digest = _copy_hashed(source / entry.path, tmp / relative, on_bytes)
                if digest != entry.sha256:
                    raise ChecksumError(
                        f"{manifest.name}/{entry.path} in the store no longer matches its manifest",
                        hint=f"edgeoss verify {manifest.name} --deep; pull or import it again",
                    )
                sums[relative] = digest
            shutil.copy2(source / MANIFEST, tmp / "models" / manifest.name / MANIFEST)
            sums[f"models/{manifest.name}/{MANIFEST}"] = _sha256(source / MANIFEST)
            if binary is not None:
                name = "edgeoss" if binary.is_dir() else ("edgeoss.exe" if binary.suffix == ".exe" else "edgeoss")
                for path in _tree(binary):
                    relative = name if binary.is_file() else f"{name}/{path.relative_to(binary).as_posix()}"
                    sums[relative] = _copy_hashed(path, tmp / relative, on_bytes)
                    if os.access(path, os.X_OK):
                        (tmp / relative).chmod(
                            (tmp / relative).stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH
                        )
            (tmp / "install.sh").write_text(INSTALL_SH, encoding="utf-8")
            (tmp / "install.sh").chmod(0o755)
            (tmp / "install.cmd").write_text(INSTALL_CMD.replace("\n", "\r\n"), encoding="utf-8", newline="")
            (tmp / "README.txt").write_text(
                README.format(
                    model=manifest.name,
                    variant=manifest.variant,
                    format=manifest.format,
                    size=manifest.total_bytes / 1e9,
                    verified=manifest.verified_at,
                    version=__version__,
                ),
                encoding="utf-8",
            )
            for extra in ("install.sh", "install.cmd", "README.txt"):
                sums[extra] = _sha256(tmp / extra)
            (tmp / "SHA256SUMS").write_text(
                "".join(f"{digest}  {path}\n" for path, digest in sorted(sums.items())), encoding="utf-8"
            )
    except OSError as exc:
        raise fsutil.write_error(exc, out) from exc
    return Bundled(out, manifest, binary, total)


def _tree(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m edgeoss.weights.bundle", description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("model", nargs="?")
    parser.add_argument("--binary", type=Path)
    parser.add_argument("--force", action="store_true")
    a = parser.parse_args(argv)
    try:
        done = bundle(a.out, a.model, binary=a.binary, overwrite=a.force)
    except EdgeossError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(exc.exit_code) from exc
    print(done.folder)


if __name__ == "__main__":
    main()
