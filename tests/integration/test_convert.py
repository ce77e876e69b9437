"""Conversion is lossless, complete, and what llama.cpp computes agrees with
two independent implementations of gpt-oss on the same checkpoint (the MXFP4
repacking alone: tests/unit/test_mxfp4_repacking.py)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import gguf
import numpy as np
import pytest
from typer.testing import CliRunner

import needs_llama
import numpy_gptoss as ref
from edgeoss import resources, spec
from edgeoss.cli import app
from edgeoss.harmony import tokenizer
from edgeoss.weights import mxfp4
from edgeoss.weights.checkpoint import open_checkpoint
from edgeoss.weights.gguf import convert
from edgeoss.weights.gguf.checks import verify
from edgeoss.weights.gguf.reader import read_model

runner = CliRunner()


def test_converted_file_verifies(tiny_gguf: Path) -> None:
    report = verify(tiny_gguf, deep=True)
    assert report.ok, report.summary()
    assert report.variant.startswith("custom gpt-oss shape (2 layers, 8 experts")
    assert report.quantization["tensors_by_type"] == {"MXFP4": 6, "BF16": 10, "F32": 25}
    assert report.sha256[tiny_gguf.name] == hashlib.sha256(tiny_gguf.read_bytes()).hexdigest()


def test_every_mxfp4_tensor_is_bit_exact(tiny_gguf: Path, tiny_checkpoint: Path) -> None:
    """(a) gguf-py's own MXFP4 dequantization of each expert tensor equals the
    checkpoint's dequantized blocks, bit for bit, gate and up de-interleaved."""
    reader = gguf.GGUFReader(tiny_gguf)
    tensors = {t.name: t for t in reader.tensors}
    ckpt = open_checkpoint(tiny_checkpoint)
    checked = 0
    for layer in range(ckpt.hparams.num_layers):
        src = f"model.layers.{layer}.mlp.experts."

        def source(name: str, rows: slice, _src: str = src) -> np.ndarray:
            blocks = np.frombuffer(ckpt.tensors[_src + name + "_blocks"].read(), np.uint8)
            scales = np.frombuffer(ckpt.tensors[_src + name + "_scales"].read(), np.uint8)
            shape = ckpt.tensors[_src + name + "_blocks"].shape
            values = mxfp4.dequantize(blocks.reshape(shape), scales.reshape(shape[:-1]))
            return values[:, rows, :]

        expected = {
            "ffn_gate_exps": source("gate_up_proj", slice(0, None, 2)),
            "ffn_up_exps": source("gate_up_proj", slice(1, None, 2)),
            "ffn_down_exps": source("down_proj", slice(None)),
        }
        for name, want in expected.items():
            t = tensors[f"blk.{layer}.{name}.weight"]
            assert t.tensor_type == gguf.GGMLQuantizationType.MXFP4
            got = gguf.dequantize(t.data, t.tensor_type).reshape(want.shape)
            assert got.dtype == np.float32
            # Equal as numbers; bit patterns differ only where FP4 code 8 (-0.0)
            # meets GGML's integer table, which has no negative zero.
            np.testing.assert_array_equal(got, want)
            negative_zero = (want == 0) & np.signbit(want)
            np.testing.assert_array_equal(got.view(np.uint32)[~negative_zero], want.view(np.uint32)[~negative_zero])
            checked += 1
    assert checked == 3 * ckpt.hparams.num_layers


def test_float_tensors_are_exact(tiny_gguf: Path, tiny_f32_gguf: Path, tiny_checkpoint: Path) -> None:
    ckpt = open_checkpoint(tiny_checkpoint)
    model = read_model(tiny_gguf)
    raw = tiny_gguf.read_bytes()
    embd = model.tensors["token_embd.weight"]
    assert raw[embd.offset : embd.offset + embd.nbytes] == ckpt.tensors["model.embed_tokens.weight"].read()
    # The small vectors are widened bf16 -> f32 exactly.
    sinks = model.tensors["blk.1.attn_sinks.weight"]
    got = np.frombuffer(raw[sinks.offset : sinks.offset + sinks.nbytes], np.float32)
    bf16 = np.frombuffer(ckpt.tensors["model.layers.1.self_attn.sinks"].read(), np.uint16)
    np.testing.assert_array_equal(got, (bf16.astype(np.uint32) << 16).view(np.float32))
    # The f32 conversion widens the matrices the same way.
    f32 = read_model(tiny_f32_gguf).tensors["blk.0.attn_q.weight"]
    assert f32.type_name == "F32"
    q = np.frombuffer(tiny_f32_gguf.read_bytes()[f32.offset : f32.offset + f32.nbytes], np.float32)
    q_src = np.frombuffer(ckpt.tensors["model.layers.0.self_attn.q_proj.weight"].read(), np.uint16)
    np.testing.assert_array_equal(q, (q_src.astype(np.uint32) << 16).view(np.float32))


def test_metadata_llama_cpp_needs(tiny_gguf: Path) -> None:
    md = read_model(tiny_gguf).metadata
    assert md["general.architecture"] == "gpt-oss"
    for key in spec.GGUF_HPARAM_KEYS:
        assert f"gpt-oss.{key}" in md, key
    assert md["gpt-oss.attention.sliding_window"] == 128
    assert md["gpt-oss.rope.scaling.type"] == "yarn"
    assert md["general.file_type"] == spec.GGML_FILE_TYPE_MXFP4_MOE
    assert md["general.license"] == "apache-2.0"
    assert md["tokenizer.ggml.model"] == "gpt2" and md["tokenizer.ggml.pre"] == "gpt-4o"
    assert md["tokenizer.ggml.tokens"] == tokenizer.tokens()
    assert len(md["tokenizer.ggml.merges"]) == len(tokenizer.merges())
    assert md["tokenizer.ggml.token_type"][spec.START] == spec.GGUF_TOKEN_TYPE_CONTROL
    assert md["tokenizer.ggml.token_type"][1000] == spec.GGUF_TOKEN_TYPE_NORMAL
    assert (md["tokenizer.ggml.bos_token_id"], md["tokenizer.ggml.eos_token_id"]) == (spec.STARTOFTEXT, spec.RETURN)
    assert md["tokenizer.chat_template"] == resources.chat_template()


def test_cli_convert_and_verify(tiny_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "model.gguf"
    result = runner.invoke(app, ["convert", str(tiny_checkpoint), "-o", str(out), "--name", "tiny", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["ok"] is True
    assert read_model(out).metadata["general.name"] == "tiny"
    result = runner.invoke(app, ["verify", str(out)])
    assert result.exit_code == 0 and "OK custom gpt-oss shape" in result.stdout
    again = runner.invoke(app, ["convert", str(tiny_checkpoint), "-o", str(out)])
    assert again.exit_code == 2 and "already exists" in again.output


# --- numerics against llama.cpp ---------------------------------------------------

PROMPT = [int(i) for i in np.random.default_rng(0).integers(0, spec.BPE_RANKS, 160)]
"""160 positions: past the 128-token sliding window, so both layer kinds matter."""

# Tolerances, and why. The f32 GGUF with an f32 KV cache leaves llama.cpp two
# known departures from the reference, both reproduced on the reference side:
# the whole-dimension YaRN ramp, and Q8_0 rounding of the activations that
# enter an MXFP4 matmul. What remains is float32 arithmetic (~1e-7) plus, at
# a few positions, a Q8_0 code that lands on the other side of a rounding
# boundary because the inputs differ by 1e-7 (measured: up to 4e-3). So: the
# same argmax everywhere, a median error near float32 rounding, and a max
# error far below what any real conversion error causes (0.07 for the YaRN
# rounding alone, 0.1-0.7 for a wrong window, zeroed sinks or swapped gate/up).
MEDIAN_TOL = 2e-5
MAX_TOL = 1e-2


def _relative_errors(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    return np.asarray(np.abs(a64 - b64).max(axis=-1) / np.abs(b64).max())


def _agree(llama: np.ndarray, other: np.ndarray) -> tuple[int, float, float]:
    per = _relative_errors(llama, other)
    return int((llama.argmax(-1) == other.argmax(-1)).sum()), float(np.median(per)), float(per.max())


def llama_logits(path: Path, ids: list[int]) -> np.ndarray:
    llama_cpp = needs_llama.llama_cpp()
    llm = llama_cpp.Llama(
        model_path=str(path),
        n_ctx=256,
        n_batch=256,
        n_ubatch=256,
        logits_all=True,
        type_k=0,  # GGML_TYPE_F32: no f16 rounding in the KV cache
        type_v=0,
        n_threads=2,
        n_gpu_layers=0,
        op_offload=False,  # a CUDA build would run the batch's matmuls on the GPU in reduced precision
        verbose=False,
    )
    try:
        llm.eval(ids)
        return np.array(llm.scores[: len(ids)], dtype=np.float32)
    finally:
        llm.close()


@pytest.fixture(scope="module")
def llama_f32(tiny_f32_gguf: Path) -> np.ndarray:
    return llama_logits(tiny_f32_gguf, PROMPT)


def test_llama_cpp_agrees_with_numpy_reference(llama_f32: np.ndarray, tiny_checkpoint: Path) -> None:
    expected = ref.forward(ref.load(tiny_checkpoint), PROMPT, yarn_round=True, q8_0_moe=True)
    same_argmax, median, worst = _agree(llama_f32, expected)
    assert same_argmax == len(PROMPT)
    assert median < MEDIAN_TOL, median
    assert worst < MAX_TOL, worst


def test_llama_cpp_agrees_with_transformers(llama_f32: np.ndarray, tiny_checkpoint: Path) -> None:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from transformers.models.gpt_oss import modeling_gpt_oss

    config = transformers.AutoConfig.from_pretrained(str(tiny_checkpoint))
    rope = dict(config.rope_parameters)
    rope["truncate"] = True  # transformers' own switch for llama.cpp's whole-dimension YaRN ramp
    config.rope_parameters = rope
    model = transformers.GptOssForCausalLM.from_pretrained(str(tiny_checkpoint), config=config, dtype=torch.float32)

    def q8_0(x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(ref.q8_0(x.detach().double().numpy())).to(x.dtype)

    # Q8_0 on the two inputs of the MXFP4 matmuls, as llama.cpp's CPU backend does.
    original_gate = modeling_gpt_oss.GptOssExperts._apply_gate
    hooks = [
        layer.mlp.experts.register_forward_pre_hook(
            lambda module, args, kwargs: ((q8_0(args[0]), *args[1:]), kwargs), with_kwargs=True
        )
        for layer in model.model.layers
    ]
    try:
        modeling_gpt_oss.GptOssExperts._apply_gate = lambda self, gate_up: q8_0(original_gate(self, gate_up))
        with torch.no_grad():
            expected = model(torch.tensor([PROMPT])).logits[0].numpy()
    finally:
        modeling_gpt_oss.GptOssExperts._apply_gate = original_gate
        for hook in hooks:
            hook.remove()
    same_argmax, median, worst = _agree(llama_f32, expected)
    assert same_argmax == len(PROMPT)
    assert median < MEDIAN_TOL, median
    assert worst < MAX_TOL, worst


def test_shipped_bf16_file_runs_in_llama_cpp(tiny_gguf: Path, tiny_checkpoint: Path) -> None:
    """The bf16 file as users get it: llama.cpp also rounds activations to
    bf16 before those matmuls, so only a loose agreement is expected."""
    logits = llama_logits(tiny_gguf, PROMPT)
    assert np.isfinite(logits).all()
    expected = ref.forward(ref.load(tiny_checkpoint), PROMPT, yarn_round=True, q8_0_moe=True)
    same_argmax, median, _ = _agree(logits, expected)
    assert same_argmax >= 0.9 * len(PROMPT)
    assert median < 1e-2


def test_a_wrong_conversion_fails_the_comparison(
    tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tolerances are sharp: swapping gate and up when de-interleaving
    gives a file that loads and verifies, but computes the wrong thing."""
    monkeypatch.setattr(convert, "GATE_ROWS", convert.UP_ROWS)
    monkeypatch.setattr(convert, "UP_ROWS", slice(0, None, 2))
    broken = tmp_path / "swapped.gguf"
    convert.convert(tiny_checkpoint, broken, outtype="f32")
    logits = llama_logits(broken, PROMPT)
    expected = ref.forward(ref.load(tiny_checkpoint), PROMPT, yarn_round=True, q8_0_moe=True)
    _, median, worst = _agree(logits, expected)
    assert median > 10 * MEDIAN_TOL and worst > MAX_TOL
