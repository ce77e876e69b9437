"""`edgeoss verify`: one entry point for every model format edgeoss runs.

A path to a .gguf file (or the first shard of a split GGUF) is checked by
edgeoss.weights.gguf.checks; a folder with genai_config.json by edgeoss.weights.onnx.checks;
an original checkpoint folder (config.json and safetensors, as vLLM and transformers
load it) by edgeoss.weights.checkpoint_checks.
A model in the store can be named instead of a path; with --deep its files
are then also checked against the sha256 its manifest recorded.
"""

from __future__ import annotations

from pathlib import Path

from edgeoss.errors import ChecksumError, FileAccessError, ModelNotFoundError, UsageError
from edgeoss.weights import checkpoint_checks
from edgeoss.weights.gguf import verified
from edgeoss.weights.onnx import checks as onnx_checks
from edgeoss.weights.report import Report
from edgeoss.weights.store import Manifest, Store, check_name


def _stored(path: Path, store: Store) -> tuple[Path, Manifest | None]:
    owner = store.owner_of(path)
    if owner is not None or path.exists():
        return path, owner
    try:
        manifest = store.get(check_name(str(path)))
    except (ModelNotFoundError, UsageError):  # not a stored model's name: report the path as missing
        return path, None
    return store.entry_path(manifest), manifest


def verify_path(
    path: Path, *, deep: bool = False, sha256: str | None = None, store: Store | None = None, fresh: bool = True
) -> Report:
    """Verify a model file or folder. A GGUF that passes is remembered; with
    `fresh` false an unchanged one that passed before is not checked again."""
    target, manifest = _stored(path, store or Store())
    if target.is_dir():
        if (target / onnx_checks.CONFIG_FILE).is_file():
            report = onnx_checks.verify(target, deep=deep or sha256 is not None)
        elif checkpoint_checks.is_checkpoint(target):
            report = checkpoint_checks.verify(target, deep=deep, sha256=sha256)
        else:
            report = Report(path=str(target))
            detail = (
                f"{target} is neither an ONNX Runtime GenAI folder ({onnx_checks.CONFIG_FILE}) nor a checkpoint "
                "(config.json with safetensors)"
            )
            report.add("read", False, detail, FileAccessError)
            return report
    else:
        report = verified.verify(target, deep=deep, sha256=sha256, fresh=fresh)
    if manifest is not None and report.ok and report.sha256:
        recorded = {f.path: f.sha256 for f in manifest.files}
        changed = sorted(name for name, digest in report.sha256.items() if recorded.get(name) != digest)
        report.add(
            "store manifest",
            not changed,
            f"{', '.join(changed)} changed since {manifest.verified_at}",
            ChecksumError,
            passed=f"sha256 as recorded at {manifest.verified_at}",
        )
    return report
