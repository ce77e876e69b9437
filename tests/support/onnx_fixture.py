"""The tiny ONNX gpt-oss the ONNX Runtime GenAI tests run on.

The project's tiny synthetic checkpoint (seed 0: real architecture and
vocabulary, random weights), exported by `edgeoss export-onnx` (fp32, CPU)
through onnxruntime-genai's own builder. It is kept in
test-artifacts/fixtures under a key of everything it depends on, so after
one build the runtime tests need only onnxruntime-genai; the build itself
needs torch, transformers and onnx-ir.

    python tests/support/onnx_fixture.py        (builds it, prints its folder)

EDGEOSS_TEST_ONNX=FOLDER uses a folder built elsewhere.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "test-artifacts" / "fixtures"


def _key() -> str:
    parts = [importlib.metadata.version("onnxruntime-genai")]
    for module in ("weights/synth.py", "weights/onnx/export.py"):
        parts.append(hashlib.sha256((ROOT / "edgeoss" / module).read_bytes()).hexdigest())
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def cached() -> Path | None:
    """The fixture if it exists and verifies; None otherwise."""
    from edgeoss.weights.onnx import checks as onnx_folder

    given = os.environ.get("EDGEOSS_TEST_ONNX")
    folder = Path(given) if given else FIXTURES / f"tiny-onnx-fp32-{_key()}"
    return folder if folder.is_dir() and onnx_folder.verify(folder).ok else None


def build(checkpoint: Path | None = None) -> Path:
    from edgeoss.weights import synth
    from edgeoss.weights.onnx import export as export_onnx

    folder = FIXTURES / f"tiny-onnx-fp32-{_key()}"
    with tempfile.TemporaryDirectory(prefix="edgeoss-onnx-fixture-") as tmp:
        if checkpoint is None:
            checkpoint = synth.write_checkpoint(Path(tmp) / "tiny", synth.plan(synth.hparams_for("tiny"), seed=0))
        export_onnx.export(checkpoint, folder, ep="cpu", precision="fp32", overwrite=True)
    return folder


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    print(cached() or build())
