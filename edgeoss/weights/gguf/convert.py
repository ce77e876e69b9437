"""Convert an original gpt-oss checkpoint (safetensors, MXFP4 experts) to GGUF.

Lossless by default: MXFP4 experts are repacked into GGML's block layout
nibble for nibble (never requantized), bf16 matrices are copied as BF16, and
the small vectors (norms, biases, sinks, router) are widened to F32 exactly.
`outtype="q8_0"` is the one lossy choice: the large matrices (embedding,
attention, output) become GGML Q8_0 as in ggml-org's published files, the
experts still bit for bit. The tokenizer and chat template travel with the
file. Tensors stream one at a time in bounded chunks; the output is written
under a temporary name and renamed only after it verifies.

Run on its own: python -m edgeoss.weights.gguf.convert SRC_DIR OUT.gguf
"""

from __future__ import annotations

import concurrent.futures
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import gguf
import numpy as np

from edgeoss import __version__, fsutil, spec
from edgeoss.errors import EdgeossError
from edgeoss.harmony import tokenizer
from edgeoss.weights import mxfp4
from edgeoss.weights.checkpoint import Checkpoint, StoredTensor, open_checkpoint
from edgeoss.weights.gguf import checks as verify
from edgeoss.weights.report import Report

log = logging.getLogger(__name__)

T = gguf.GGMLQuantizationType
_GGML_TYPES = {"BF16": T.BF16, "F16": T.F16, "F32": T.F32, "MXFP4": T.MXFP4, "Q8_0": T.Q8_0}

_FLOAT_VIEWS = {"BF16": np.uint16, "F16": np.float16, "F32": np.float32}

_Q8_0_BAND_ELEMENTS = 1 << 22
"""Elements quantized at a time (whole rows). gguf-py's quantizer holds a few
float32 temporaries of the band, so 4M elements keeps it near 100 MiB while
each call is long enough for NumPy's per-call cost not to matter."""


@dataclass(frozen=True)
class Job:
    """One GGUF tensor and how to produce its bytes from the checkpoint."""

    target: spec.TensorSpec
    produce: Callable[[], Iterator[bytes]]


def _float32(data: bytes, dtype: str) -> np.ndarray:
    """Float bytes of the checkpoint (BF16, F16 or F32) as float32, exactly."""
    raw = np.frombuffer(data, dtype=_FLOAT_VIEWS[dtype])
    if dtype == "BF16":
        return (raw.astype(np.uint32) << 16).view(np.float32)
    return raw.astype(np.float32)


def _widen(stored: StoredTensor) -> np.ndarray:
    """A float tensor of the checkpoint as float32, exactly."""
    return _float32(stored.read(), stored.dtype).reshape(stored.shape)


def _as(stored: StoredTensor, dtype: str) -> Callable[[], Iterator[bytes]]:
    if stored.dtype == dtype:
        return stored.chunks  # a straight copy
    if dtype == "F32":
        return lambda: iter([_widen(stored).tobytes()])
    if dtype == "Q8_0":
        return _q8_0(stored)
    raise EdgeossError(f"{stored.name} is {stored.dtype}; a lossless conversion to {dtype} is not possible")


def _q8_0(stored: StoredTensor) -> Callable[[], Iterator[bytes]]:
    """GGML Q8_0 bytes of a 2-D float matrix, a band of whole rows at a time.

    Quantized by gguf-py, whose Q8_0 is bit-exact with ggml's reference
    quantize_row_q8_0 (what llama-quantize and llama.cpp's converter use), from
    the exact float32 value of each weight."""
    if stored.dtype not in _FLOAT_VIEWS or len(stored.shape) != 2 or stored.shape[1] % spec.Q8_0_BLOCK:
        raise EdgeossError(f"{stored.name} ({stored.dtype} {list(stored.shape)}) cannot be quantized to Q8_0")
    rows, cols = stored.shape
    row_bytes = cols * np.dtype(_FLOAT_VIEWS[stored.dtype]).itemsize
    band = max(1, _Q8_0_BAND_ELEMENTS // cols)

    def produce() -> Iterator[bytes]:
        for first in range(0, rows, band):
            n = min(band, rows - first)
            values = _float32(stored.read(first * row_bytes, n * row_bytes), stored.dtype).reshape(n, cols)
            yield gguf.quants.quantize(values, T.Q8_0).tobytes()

    return produce


def _rows(stored: StoredTensor, rows: slice) -> Callable[[], Iterator[bytes]]:
    """F32 of every `rows`-th row along axis 1 (gate_up de-interleaving of a bias)."""
    return lambda: iter([np.ascontiguousarray(_widen(stored)[:, rows]).tobytes()])


def _experts(blocks: StoredTensor, scales: StoredTensor, rows: slice) -> Callable[[], Iterator[bytes]]:
    """GGML MXFP4 bytes of one expert projection, one expert at a time."""
    n_experts, n_rows, n_blocks, _ = blocks.shape
    per_expert_blocks = n_rows * n_blocks * spec.MXFP4_BLOCK_BYTES
    per_expert_scales = n_rows * n_blocks

    def produce() -> Iterator[bytes]:
        for e in range(n_experts):
            b = np.frombuffer(blocks.read(e * per_expert_blocks, per_expert_blocks), dtype=np.uint8)
            s = np.frombuffer(scales.read(e * per_expert_scales, per_expert_scales), dtype=np.uint8)
            b = b.reshape(n_rows, n_blocks, spec.MXFP4_BLOCK_BYTES)[rows]
            s = s.reshape(n_rows, n_blocks)[rows]
            yield mxfp4.to_ggml(b, s).tobytes()

    return produce


# gate_up_proj rows interleave gate (even rows) and up (odd rows); GGUF keeps
# them as two tensors.
GATE_ROWS = slice(0, None, 2)
UP_ROWS = slice(1, None, 2)

OUTTYPES = tuple(spec.GGUF_OUTTYPES)
"""Type of the large float matrices (spec.GGUF_OUTTYPES). bf16 is the
checkpoint's own; f32 is the same values widened (also lossless), for exact
numerical comparisons; q8_0 rounds them to 8 bits (lossy, fewer bytes per token)."""


def plan_tensors(ckpt: Checkpoint, outtype: str = "bf16") -> list[Job]:
    """Every GGUF tensor of spec.gguf_tensors(outtype), with where its bytes come from."""
    return [Job(target, _producer(target, ckpt.tensors)) for target in ckpt.hparams.gguf_tensors(outtype)]


def _producer(target: spec.TensorSpec, src: dict[str, StoredTensor]) -> Callable[[], Iterator[bytes]]:
    name = target.name
    top = {
        "token_embd.weight": "model.embed_tokens.weight",
        "output_norm.weight": "model.norm.weight",
        "output.weight": "lm_head.weight",
    }
    if name in top:
        return _as(src[top[name]], target.dtype)
    _, layer, rest = name.split(".", 2)
    p = f"model.layers.{layer}."
    simple = {
        "attn_norm.weight": "input_layernorm.weight",
        "post_attention_norm.weight": "post_attention_layernorm.weight",
        "attn_q.weight": "self_attn.q_proj.weight",
        "attn_q.bias": "self_attn.q_proj.bias",
        "attn_k.weight": "self_attn.k_proj.weight",
        "attn_k.bias": "self_attn.k_proj.bias",
        "attn_v.weight": "self_attn.v_proj.weight",
        "attn_v.bias": "self_attn.v_proj.bias",
        "attn_output.weight": "self_attn.o_proj.weight",
        "attn_output.bias": "self_attn.o_proj.bias",
        "attn_sinks.weight": "self_attn.sinks",
        "ffn_gate_inp.weight": "mlp.router.weight",
        "ffn_gate_inp.bias": "mlp.router.bias",
        "ffn_down_exps.bias": "mlp.experts.down_proj_bias",
    }
    if rest in simple:
        return _as(src[p + simple[rest]], target.dtype)
    gate_up = GATE_ROWS if rest.startswith("ffn_gate_exps") else UP_ROWS
    experts = p + "mlp.experts."
    if rest in ("ffn_gate_exps.weight", "ffn_up_exps.weight"):
        return _experts(src[experts + "gate_up_proj_blocks"], src[experts + "gate_up_proj_scales"], gate_up)
    if rest in ("ffn_gate_exps.bias", "ffn_up_exps.bias"):
        return _rows(src[experts + "gate_up_proj_bias"], gate_up)
    if rest == "ffn_down_exps.weight":
        return _experts(src[experts + "down_proj_blocks"], src[experts + "down_proj_scales"], slice(None))
    raise AssertionError(f"no source for {name}")


def _metadata(writer: gguf.GGUFWriter, ckpt: Checkpoint, name: str, source: str | None) -> None:
    hp = ckpt.hparams
    writer.add_type("model")
    writer.add_name(name)
    writer.add_license("apache-2.0")
    if source:
        writer.add_source_repo_url(source)
    writer.add_string("general.converter", f"edgeoss {__version__}")
    writer.add_file_type(spec.GGML_FILE_TYPE_MXFP4_MOE)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    for key, (attribute, kind) in spec.GGUF_HPARAM_KEYS.items():
        value = getattr(hp, attribute)
        full = f"{spec.GGUF_ARCH}.{key}"
        if kind is float:
            writer.add_float32(full, float(value))
        else:
            writer.add_uint32(full, int(value))
    writer.add_rope_scaling_type(gguf.RopeScalingType.YARN)

    tokens = tokenizer.tokens()[: hp.vocab_size]
    writer.add_tokenizer_model(spec.GGUF_TOKENIZER_MODEL)
    writer.add_tokenizer_pre(spec.GGUF_TOKENIZER_PRE)
    writer.add_token_list(tokens)
    writer.add_token_types(
        [spec.GGUF_TOKEN_TYPE_NORMAL] * spec.BPE_RANKS + [spec.GGUF_TOKEN_TYPE_CONTROL] * (len(tokens) - spec.BPE_RANKS)
    )
    writer.add_token_merges(
        [f"{tokenizer.to_byte_level(a)} {tokenizer.to_byte_level(b)}" for a, b in tokenizer.merges()]
    )
    writer.add_bos_token_id(spec.BOS_TOKEN)
    writer.add_eos_token_id(spec.EOS_TOKEN)
    writer.add_pad_token_id(spec.PAD_TOKEN)
    writer.add_add_bos_token(False)
    writer.add_chat_template(_chat_template(ckpt))


def _chat_template(ckpt: Checkpoint) -> str:
    """The checkpoint's own template (chat_template.jinja, else tokenizer_config.json)."""
    from edgeoss import resources

    jinja = ckpt.file("chat_template.jinja")
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    try:
        config = fsutil.read_json(ckpt.file("tokenizer_config.json"))
        template = config.get("chat_template")
        if isinstance(template, str) and template:
            return template
    except (OSError, ValueError):
        pass
    log.warning("the checkpoint has no chat template; embedding OpenAI's published one")
    return resources.chat_template()


def _write_data(fout: BinaryIO, jobs: list[Job], alignment: int, on_bytes: Callable[[int], None] | None) -> None:
    """Tensor data after the header, each tensor aligned; a second thread
    writes while this one reads and repacks the next chunk."""
    position = fout.tell()
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        writer = fsutil.Background(pool, fout.write)
        for job in jobs:
            writer.feed(b"\0" * (-position % alignment))
            position += -position % alignment
            written = 0
            for chunk in job.produce():
                writer.feed(chunk)
                written += len(chunk)
                if on_bytes is not None:
                    on_bytes(len(chunk))
            if written != job.target.nbytes:
                raise AssertionError(f"{job.target.name}: produced {written} bytes, expected {job.target.nbytes}")
            position += written
        writer.feed(b"\0" * (-position % alignment))
        writer.drain()


def convert(
    src_dir: Path,
    out_path: Path,
    *,
    name: str | None = None,
    source: str | None = None,
    outtype: str = "bf16",
    overwrite: bool = False,
    on_bytes: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> Report:
    """Convert `src_dir` to `out_path`; return the verification report of the result."""
    ckpt = open_checkpoint(src_dir)
    jobs = plan_tensors(ckpt, outtype)
    total = sum(j.target.nbytes for j in jobs)
    if on_total is not None:
        on_total(total)
    fsutil.ensure_free_space(out_path.absolute().parent, total + 64 * 1024 * 1024, "the GGUF")
    model_name = name or ckpt.hparams.name
    log.info("converting %s (%s) to %s", src_dir, model_name, out_path)
    try:
        with fsutil.atomic_file(out_path, overwrite=overwrite) as tmp:
            writer = gguf.GGUFWriter(path=None, arch=spec.GGUF_ARCH)
            _metadata(writer, ckpt, model_name, source)
            for job in jobs:
                t = job.target
                writer.add_tensor_info(t.name, t.shape, np.dtype(np.float32), t.nbytes, raw_dtype=_GGML_TYPES[t.dtype])
            writer.open_output_file(tmp)
            writer.write_header_to_file()
            writer.write_kv_data_to_file()
            writer.write_ti_data_to_file()
            fout = writer.fout[0] if writer.fout else None
            assert fout is not None
            _write_data(fout, jobs, writer.data_alignment or gguf.GGUF_DEFAULT_ALIGNMENT, on_bytes)
            writer.close()
            report = verify.verify(tmp, expected_variant=ckpt.hparams)
            if not report.ok:
                raise report.error()
    except OSError as exc:
        raise fsutil.write_error(exc, out_path) from exc
    report.path = str(out_path.absolute())
    log.info("wrote %s", out_path)
    return report


def main(argv: list[str] | None = None) -> None:
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        raise SystemExit("usage: python -m edgeoss.weights.gguf.convert SRC_DIR OUT.gguf")
    print(convert(Path(args[0]), Path(args[1])).summary())


if __name__ == "__main__":
    main()
