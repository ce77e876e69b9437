"""The memory model against what llama.cpp really allocates (CPU build).

Synthetic GGUFs of two sizes are loaded by llama-cpp-python in a child
process; its allocator's figures (model, KV, compute and output buffers) are
compared with edgeoss.planning.memory's prediction for the same file and settings.
benchmarks/memory_model.py does the same at 20b shapes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeoss.planning import memory
from edgeoss.planning.measured import measure
from edgeoss.weights import synth
from edgeoss.weights.gguf import convert
from edgeoss.weights.gguf.reader import read_model

pytest.importorskip("llama_cpp")


@pytest.fixture(scope="module")
def small_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("small")
    ckpt = synth.write_checkpoint(folder / "ckpt", synth.plan(synth.hparams_for("small"), seed=2))
    out = folder / "small.gguf"
    convert.convert(ckpt, out)
    return out


def _predicted(path: Path, scale: str, context: int) -> tuple[memory.Weights, int, int]:
    hp = synth.SCALES[scale]
    weights = memory.Weights.from_gguf(read_model(path))
    return weights, memory.kv_cache_bytes(hp, context), memory.compute_bytes(hp)


@pytest.mark.parametrize("context", [4096, 32768])
@pytest.mark.parametrize("which", ["tiny", "small"])
def test_prediction_within_15_percent(which: str, context: int, tiny_gguf: Path, small_gguf: Path) -> None:
    path = tiny_gguf if which == "tiny" else small_gguf
    weights, kv, compute = _predicted(path, which, context)
    measured = measure(path, context=context)
    # Weights: llama.cpp's model buffers (CPU, and CPU_REPACK for MXFP4) hold every tensor.
    assert measured.kind("model") == pytest.approx(weights.total, rel=0.01)
    assert measured.kind("KV") == pytest.approx(kv, rel=0.01)  # the log rounds to 0.01 MiB
    assert measured.kind("compute") == pytest.approx(compute, rel=0.15)
    predicted = weights.total + kv + compute
    assert measured.host == pytest.approx(predicted, rel=0.15)
