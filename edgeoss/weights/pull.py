"""`edgeoss pull`: fetch an official gpt-oss artifact from the Hugging Face Hub.

huggingface_hub does the transfer, with its own progress bars. A transfer
cut mid-file resumes inside the same pull (huggingface_hub retries with a
Range request from its last 10 MiB boundary). Files land in a staging folder
inside the store named by repository and commit, so files that completed
before a pull was stopped are kept and not fetched again; a file cut by
Ctrl-C starts over (huggingface_hub 2.4 keeps no partial file across runs).
Every file is checked against the sha256 (or git blob id) the Hub's metadata
gives, because hf_hub_download checks only sizes; a file that differs is
deleted and never registered. Only a whole, verified artifact is stored.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import hashlib
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edgeoss import fsutil, spec
from edgeoss.backends import LLAMA_CPP
from edgeoss.errors import ChecksumError, EdgeossError, HubNotFoundError, HubUnreachableError, UsageError
from edgeoss.resources import sha256_file
from edgeoss.weights import catalog
from edgeoss.weights.catalog import Artifact
from edgeoss.weights.gguf import verified
from edgeoss.weights.onnx import checks as onnx_checks
from edgeoss.weights.report import Report
from edgeoss.weights.store import FileEntry, Manifest, Store, claim, now

log = logging.getLogger(__name__)

OFFLINE_HINT = "copy the model files to this machine (a USB stick works) and run `edgeoss import PATH`"


@dataclass(frozen=True)
class RemoteFile:
    path: str
    size: int
    sha256: str | None  # LFS files
    blob_id: str | None  # git blob sha1, for small non-LFS files


def resolve(what: str, fmt: str) -> Artifact:
    """A catalog entry, or an ad-hoc one for any repository id holding GGUF files."""
    if fmt not in catalog.FORMATS:
        raise UsageError(f"unknown format {fmt!r}", hint=f"choose one of {', '.join(catalog.FORMATS)}")
    found = catalog.find(what, fmt)
    if found is not None:
        return found
    if "/" in what and fmt == "gguf":
        return Artifact("custom", "gguf", what, ("*.gguf",), "", LLAMA_CPP.key, None)
    known = sorted({f"{a.variant} ({a.format})" for a in catalog.ARTIFACTS})
    raise UsageError(f"no {fmt} artifact for {what!r}", hint=f"known: {', '.join(known)}; or give a Hub repo id")


_WRITE_ERRNOS = {errno.ENOSPC, errno.EACCES, errno.EPERM, errno.EROFS, getattr(errno, "EDQUOT", errno.ENOSPC)}


def _hub_errors(exc: Exception, repo: str, staging: Path | None = None) -> EdgeossError:
    """Our error for whatever huggingface_hub (or its HTTP stack) raised.

    Nearly all of huggingface_hub's errors are OSError subclasses, so a local
    disk problem is told apart by its errno, before anything else.
    """
    from huggingface_hub import errors as hf_errors

    if staging is not None and isinstance(exc, OSError) and exc.errno in _WRITE_ERRNOS:
        return fsutil.write_error(exc, staging)
    if isinstance(exc, hf_errors.RepositoryNotFoundError | hf_errors.RevisionNotFoundError):
        return HubNotFoundError(f"{repo} was not found on the Hub ({type(exc).__name__})")
    if isinstance(exc, hf_errors.RemoteEntryNotFoundError):
        return HubNotFoundError(f"a file of {repo} was not found on the Hub: {exc}")
    cause = exc.__cause__ if isinstance(exc, hf_errors.LocalEntryNotFoundError) else exc
    if isinstance(cause, hf_errors.OfflineModeIsEnabled):
        return HubUnreachableError("offline mode is on (HF_HUB_OFFLINE)", hint=OFFLINE_HINT)
    reason = type(cause).__name__ if cause is not None else type(exc).__name__
    return HubUnreachableError(f"the Hugging Face Hub cannot be reached ({reason})", hint=OFFLINE_HINT)


def _remote_files(artifact: Artifact, revision: str) -> tuple[str, list[RemoteFile]]:
    from huggingface_hub import HfApi, constants

    if constants.HF_HUB_OFFLINE:
        raise HubUnreachableError("offline mode is on (HF_HUB_OFFLINE)", hint=OFFLINE_HINT)
    try:
        info = HfApi().model_info(artifact.repo, revision=revision, files_metadata=True)
    except Exception as exc:  # huggingface_hub and its HTTP stack raise many types
        raise _hub_errors(exc, artifact.repo) from exc
    files = []
    for sibling in info.siblings or []:
        try:
            # The listing comes from the network (HF_ENDPOINT may be any server): a path
            # that leaves the repository would be written outside the staging folder.
            fsutil.relative_path(sibling.rfilename, f"a file listed by {artifact.repo}")
        except ValueError as exc:
            raise HubNotFoundError(f"{exc}; nothing was downloaded", hint="check HF_ENDPOINT") from None
        if any(fnmatch.fnmatch(sibling.rfilename, pattern) for pattern in artifact.patterns):
            lfs = sibling.lfs
            files.append(
                RemoteFile(
                    sibling.rfilename,
                    int(sibling.size or (lfs.size if lfs else 0)),
                    lfs.sha256 if lfs else None,
                    sibling.blob_id,
                )
            )
    if not files:
        raise HubNotFoundError(f"{artifact.repo} has no files matching {', '.join(artifact.patterns)}")
    return str(info.sha), sorted(files, key=lambda f: f.path)


def _digest_matches(path: Path, remote: RemoteFile) -> bool:
    if remote.sha256:
        digest = hashlib.sha256()
    elif remote.blob_id:
        digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode(), usedforsecurity=False)
    else:
        return True  # the Hub gave nothing to compare with; verify still runs
    with path.open("rb") as fh:
        while chunk := fh.read(16 << 20):
            digest.update(chunk)
    return digest.hexdigest() == (remote.sha256 or remote.blob_id)


def staging_dir(store: Store, artifact: Artifact, commit: str) -> Path:
    return store.staging(f"{artifact.repo.replace('/', '--')}@{commit}")


def pull(
    what: str,
    fmt: str = "gguf",
    *,
    name: str | None = None,
    revision: str = "main",
    store: Store | None = None,
    overwrite: bool = False,
    progress: bool = True,
    on_plan: Callable[[str, int], None] | None = None,
    on_event: Callable[[str, int, int], None] | None = None,
) -> Manifest:
    """Download, check and store one artifact; return its manifest. `on_event(status,
    completed bytes, total bytes)` follows the steps (Ollama's pull statuses)."""
    tell = on_event or (lambda status, completed, total: None)
    tell("pulling manifest", 0, 0)
    from huggingface_hub import hf_hub_download
    from huggingface_hub.utils.tqdm import disable_progress_bars

    store = store or Store()
    artifact = resolve(what, fmt)
    target_name = name if name is not None else artifact.name
    if any(m.name == target_name for m in store.list()) and not overwrite:
        raise UsageError(f"{target_name!r} is already in the store", hint="pass --force to fetch it again")
    commit, files = _remote_files(artifact, revision)
    total = sum(f.size for f in files)
    if on_plan is not None:
        on_plan(f"{artifact.repo}@{commit[:12]}", total)
    staging = staging_dir(store, artifact, commit)
    have = _staged_bytes(staging, files)
    fsutil.ensure_free_space(store.root, total - have + 64 * 1024 * 1024, f"{artifact.repo} ({len(files)} files)")
    claim(staging)  # `edgeoss clean` leaves a running pull's downloads alone

    with contextlib.nullcontext() if progress else disable_progress_bars():
        tell(f"pulling {artifact.repo}", have, total)
        for remote in files:
            _fetch(artifact, remote, staging, commit, hf_hub_download)
            tell(f"pulling {artifact.repo}", min(_staged_bytes(staging, files), total), total)

    tell("verifying sha256 digest", total, total)
    manifest = _store(store, artifact, target_name, staging, files, commit, overwrite)
    shutil.rmtree(staging, ignore_errors=True)
    return manifest


def _staged_bytes(staging: Path, files: list[RemoteFile]) -> int:
    """Bytes of the artifact's files already in the staging folder."""
    return sum((staging / f.path).stat().st_size for f in files if (staging / f.path).is_file())


def _fetch(artifact: Artifact, remote: RemoteFile, staging: Path, commit: str, download: Callable[..., str]) -> None:
    local = staging / remote.path
    if local.is_file() and local.stat().st_size == remote.size and _digest_matches(local, remote):
        return  # fetched and checked by an earlier pull that was stopped
    try:
        download(artifact.repo, remote.path, revision=commit, local_dir=staging)
    except Exception as exc:  # huggingface_hub and its HTTP stack raise many types
        raise _hub_errors(exc, artifact.repo, staging) from exc
    if not _digest_matches(local, remote):
        local.unlink(missing_ok=True)
        raise ChecksumError(
            f"{remote.path} from {artifact.repo} does not match the Hub's checksum; it was deleted",
            hint="run the same pull again; a file damaged in transfer is fetched anew",
        )
    log.info("fetched %s/%s (%d bytes, checksum ok)", artifact.repo, remote.path, remote.size)


def _entry(artifact: Artifact, files: list[RemoteFile]) -> str:
    if artifact.entry:
        return artifact.entry
    ggufs = sorted(f.path for f in files if f.path.endswith(".gguf"))
    return next((p for p in ggufs if "-00001-of-" in p), ggufs[0])


def _verify_entry(artifact: Artifact, target: Path) -> Report:
    if artifact.format == "gguf":
        return verified.verify(target, fresh=True)
    if artifact.format.startswith("onnx"):
        return onnx_checks.verify(target)
    from edgeoss.weights.checkpoint import open_checkpoint

    ckpt = open_checkpoint(target)  # raises CheckpointError when incomplete or not gpt-oss
    report = Report(path=str(target), format="safetensors", variant=spec.describe_shape(ckpt.hparams))
    report.add("checkpoint", True, "complete gpt-oss checkpoint")
    return report


def _store(
    store: Store,
    artifact: Artifact,
    name: str,
    staging: Path,
    files: list[RemoteFile],
    commit: str,
    overwrite: bool,
) -> Manifest:
    entry = _entry(artifact, files)

    def gather(tmp: Path) -> None:
        for remote in files:
            (tmp / remote.path).parent.mkdir(parents=True, exist_ok=True)
            # Linked, not moved: a pull killed while it verifies keeps its downloads
            # for the next one (moved only where the disk has no hard links).
            try:
                os.link(staging / remote.path, tmp / remote.path)
            except OSError:
                os.replace(staging / remote.path, tmp / remote.path)

    def describe(tmp: Path) -> Manifest:
        report = _verify_entry(artifact, tmp / entry)
        if not report.ok:
            raise report.error()
        # What the files are, not what the catalog expected: a repo may hold another shape.
        variant = report.variant if report.variant in spec.VARIANTS else "custom"
        return Manifest(
            name=name,
            variant=variant,
            format=artifact.format,
            backend=artifact.backend,
            entry=entry,
            # Small non-LFS files carry only a git blob id on the Hub: hash them here.
            files=[FileEntry(f.path, f.size, f.sha256 or sha256_file(tmp / f.path)) for f in files],
            source={"kind": "hub", "repo": artifact.repo, "revision": commit},
            verified_at=now(),
        )

    return store.add(name, gather, describe, overwrite=overwrite)
