"""`convert --outtype q8_0`: the large matrices become GGML Q8_0 as ggml's
reference quantizer writes them, everything else is the lossless file's bytes,
the spec predicts the file to the byte, verify passes, and llama.cpp computes
what an independent forward pass with Q8_0 matrices computes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import needs_llama
import numpy_gptoss as ref
from edgeoss import spec
from edgeoss.cli import app
from edgeoss.engines.base import LoadSettings, Sampling
from edgeoss.engines.llamacpp.engine import LlamaCppEngine
from edgeoss.errors import BadNumbersError
from edgeoss.planning import memory
from edgeoss.weights.checkpoint import open_checkpoint
from edgeoss.weights.gguf import convert
from edgeoss.weights.gguf.checks import verify
from edgeoss.weights.gguf.reader import GGUFModel, TensorInfo, read_model

runner = CliRunner()

PROMPT = [int(i) for i in np.random.default_rng(0).integers(0, spec.BPE_RANKS, 160)]
"""The numerics check's prompt (tests/integration/test_convert.py): past the 128-token window."""

# Same tolerances as the f32 numerics check, and for the same reason: with the
# Q8_0 rounding of the weights and of the activations entering those matmuls
# reproduced on the reference side, what remains is float32 arithmetic plus,
# at a few positions, a Q8_0 code on the other side of a rounding boundary
# (measured: median 9e-8, max 5e-3). Leaving out either rounding moves the
# median to ~1e-2, 500 times the tolerance.
MEDIAN_TOL = 2e-5
MAX_TOL = 1e-2


@pytest.fixture(scope="module")
def q8_gguf(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gguf") / "tiny-q8_0.gguf"
    convert.convert(tiny_checkpoint, out, outtype="q8_0")
    return out


def _data(path: Path, t: TensorInfo) -> bytes:
    with path.open("rb") as fh:
        fh.seek(t.offset)
        return fh.read(t.nbytes)


def _matrix_names(model: GGUFModel) -> set[str]:
    return {n for n, t in model.tensors.items() if t.type_name == "Q8_0"}


def test_q8_0_file_verifies(q8_gguf: Path) -> None:
    report = verify(q8_gguf, deep=True)
    assert report.ok, report.summary()
    assert report.quantization["tensors_by_type"] == {"MXFP4": 6, "Q8_0": 10, "F32": 25}
    assert report.quantization["file_type"] == spec.GGML_FILE_TYPE_MXFP4_MOE
    checks = {c.name: c for c in report.checks}
    assert checks["original MXFP4 experts"].ok
    assert checks["finite floats"].ok


def test_matrices_are_q8_0_and_the_rest_is_the_lossless_files(q8_gguf: Path, tiny_gguf: Path) -> None:
    q8, lossless = read_model(q8_gguf), read_model(tiny_gguf)
    assert set(q8.tensors) == set(lossless.tensors)
    per_layer = {"attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_output.weight"}
    assert _matrix_names(q8) == {"token_embd.weight", "output.weight"} | {
        f"blk.{i}.{n}" for i in range(2) for n in per_layer
    }
    assert {lossless.tensors[n].type_name for n in _matrix_names(q8)} == {"BF16"}
    same = 0
    for name, t in q8.tensors.items():
        if name in _matrix_names(q8):
            continue
        other = lossless.tensors[name]
        assert (t.type_name, t.shape) == (other.type_name, other.shape), name
        assert _data(q8_gguf, t) == _data(tiny_gguf, other), name  # experts, vectors, router: bit for bit
        same += t.type_name == "MXFP4"
    assert same == 6


def test_matrices_are_what_ggml_reference_quantizer_writes(q8_gguf: Path, tiny_checkpoint: Path) -> None:
    """Each Q8_0 block (f16 scale, 32 int8 codes) equals the test's own
    implementation of ggml's quantize_row_q8_0_ref applied to the checkpoint,
    row for row, across the converter's bands of rows."""
    model = read_model(q8_gguf)
    source = ref.load(tiny_checkpoint).tensors
    names = {"token_embd.weight": "model.embed_tokens.weight", "output.weight": "lm_head.weight"}
    for i in range(2):
        for gguf_name, hf in (
            ("attn_q", "q_proj"),
            ("attn_k", "k_proj"),
            ("attn_v", "v_proj"),
            ("attn_output", "o_proj"),
        ):
            names[f"blk.{i}.{gguf_name}.weight"] = f"model.layers.{i}.self_attn.{hf}.weight"
    for gguf_name, hf in names.items():
        t = model.tensors[gguf_name]
        blocks = np.frombuffer(_data(q8_gguf, t), np.uint8).reshape(-1, spec.Q8_0_BLOCK_BYTES)
        codes, scales = ref.q8_0_weight_codes(source[hf])
        np.testing.assert_array_equal(blocks[:, :2].copy().view(np.float16).ravel(), scales.ravel(), gguf_name)
        np.testing.assert_array_equal(blocks[:, 2:].view(np.int8).ravel(), codes.astype(np.int8).ravel(), gguf_name)
    # The output matrix (201088 rows) spans several bands, the last one short.
    assert model.tensors["output.weight"].shape[0] * 64 > 2 * convert._Q8_0_BAND_ELEMENTS


def test_size_is_what_the_spec_and_memory_model_predict(q8_gguf: Path, tiny_gguf: Path, tiny_checkpoint: Path) -> None:
    hp = open_checkpoint(tiny_checkpoint).hparams
    assert q8_gguf.stat().st_size == hp.gguf_file_bytes("q8_0")
    assert tiny_gguf.stat().st_size == hp.gguf_file_bytes("bf16")
    assert memory.Weights.from_gguf(read_model(q8_gguf)) == memory.Weights.estimate(hp, "Q8_0")
    assert memory.Weights.from_gguf(read_model(tiny_gguf)) == memory.Weights.estimate(hp, "BF16")
    # Every matrix element saves 2 - 34/32 bytes: the whole difference.
    matrices = sum(t.numel for t in hp.gguf_tensors() if t.dtype == "BF16")
    assert tiny_gguf.stat().st_size - q8_gguf.stat().st_size == matrices * 30 // 32


def test_deep_verify_finds_a_nonfinite_q8_0_scale(q8_gguf: Path, tmp_path: Path) -> None:
    broken = tmp_path / "inf-scale.gguf"
    shutil.copyfile(q8_gguf, broken)
    t = read_model(broken).tensors["blk.1.attn_v.weight"]
    with broken.open("r+b") as fh:
        fh.seek(t.offset + 5 * spec.Q8_0_BLOCK_BYTES)  # the f16 scale of the sixth block
        fh.write(np.array([np.inf], np.float16).tobytes())
    assert verify(broken).ok  # a quick verify reads no tensor data
    report = verify(broken, deep=True)
    assert not report.ok
    assert report.failure is not None and report.failure.name == "finite floats"
    assert "blk.1.attn_v.weight" in report.failure.detail
    assert isinstance(report.error(), BadNumbersError)


def test_cli_convert_q8_0(tiny_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "model.gguf"
    result = runner.invoke(app, ["convert", str(tiny_checkpoint), "-o", str(out), "--outtype", "q8_0", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["quantization"]["tensors_by_type"]["Q8_0"] == 10
    bad = runner.invoke(app, ["convert", str(tiny_checkpoint), "-o", str(tmp_path / "x.gguf"), "--outtype", "q4_0"])
    assert bad.exit_code == 2 and "unknown outtype" in bad.output
    assert not (tmp_path / "x.gguf").exists()


# --- llama.cpp -------------------------------------------------------------------


def llama_logits(path: Path, ids: list[int]) -> np.ndarray:
    """As the f32 numerics check runs llama.cpp: f32 KV cache, CPU only, every position."""
    llama_cpp = needs_llama.llama_cpp()
    llm = llama_cpp.Llama(
        model_path=str(path),
        n_ctx=256,
        n_batch=256,
        n_ubatch=256,
        logits_all=True,
        type_k=0,
        type_v=0,
        n_threads=2,
        n_gpu_layers=0,
        op_offload=False,
        verbose=False,
    )
    try:
        llm.eval(ids)
        return np.array(llm.scores[: len(ids)], dtype=np.float32)
    finally:
        llm.close()


def _agree(llama: np.ndarray, other: np.ndarray) -> tuple[int, float, float]:
    per = np.abs(llama.astype(np.float64) - other).max(axis=-1) / np.abs(other).max()
    return int((llama.argmax(-1) == other.argmax(-1)).sum()), float(np.median(per)), float(per.max())


def test_llama_cpp_agrees_with_numpy_reference_on_q8_0(q8_gguf: Path, tiny_checkpoint: Path) -> None:
    logits = llama_logits(q8_gguf, PROMPT)
    model = ref.load(tiny_checkpoint)
    expected = ref.forward(ref.q8_0_weights(model), PROMPT, yarn_round=True, q8_0_moe=True, q8_0_matrices=True)
    same_argmax, median, worst = _agree(logits, expected)
    assert same_argmax == len(PROMPT)
    assert median < MEDIAN_TOL, median
    assert worst < MAX_TOL, worst
    # Sharp enough to see the Q8_0 rounding of the weights itself.
    unrounded = ref.forward(model, PROMPT, yarn_round=True, q8_0_moe=True, q8_0_matrices=True)
    assert _agree(logits, unrounded)[1] > 10 * MEDIAN_TOL


def test_edgeoss_engine_loads_and_generates(q8_gguf: Path) -> None:
    needs_llama.llama_cpp()
    engine = LlamaCppEngine(q8_gguf, LoadSettings(context_length=512, use_mmap=False))
    try:
        tokens = list(engine.generate(PROMPT[:40], Sampling(max_tokens=12, temperature=0.0)))
        again = list(engine.generate(PROMPT[:40], Sampling(max_tokens=12, temperature=0.0)))
    finally:
        engine.close()
    assert len(tokens) == 12 and all(0 <= t < spec.VOCAB_SIZE for t in tokens)
    assert again == tokens  # greedy: the same file gives the same tokens
