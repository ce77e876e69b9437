"""The memory model against what llama.cpp really allocates (CPU build).

Synthetic GGUFs of two sizes are loaded by llama-cpp-python in a child
process; its allocator's figures (model, KV, compute and output buffers) are
compared with edgeoss.memory's prediction for the same file and settings.
benchmarks/memory_model.py does the same at 20b shapes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeoss import memory, synth
from edgeoss.gguf import convert
from edgeoss.gguf.reader import read_model
from edgeoss.memory_measure import measure, parse_log

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


def test_parse_log_by_device() -> None:
    log = (
        "load_tensors:        CUDA0 model buffer size = 10240.00 MiB\n"
        "load_tensors:   CPU_Mapped model buffer size =   586.82 MiB\n"
        "llama_kv_cache:      CUDA0 KV buffer size =    96.00 MiB\n"
        "sched_reserve:      CUDA0 compute buffer size =   415.00 MiB\n"
        "sched_reserve:  CUDA_Host compute buffer size =    20.00 MiB\n"
    )
    measured = parse_log(log)
    assert measured.gpu == int((10240 + 96 + 415) * memory.MIB)
    assert measured.host == int((586.82 + 20) * memory.MIB)
    assert measured.device("CUDA0") == measured.gpu
