"""Verify that a GGUF is gpt-oss, whole and undamaged.

The file is parsed by edgeoss's own bounds-checked reader first, so nothing
malformed ever reaches llama.cpp. Then: architecture and hyper-parameters
against the spec (naming the variant), the full tensor inventory, the
vocabulary against o200k_harmony, the chat template, and a quantization
summary. `deep` also reads every byte once: sha256, MXFP4 scale exponents,
NaN/Inf in float tensors.

verify() never raises for anything in the file: it returns a Report whose
first failed check names the failure class (and so the exit code).

Run on its own: python -m edgeoss.weights.gguf.checks PATH [--deep]
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeoss import fsutil, spec
from edgeoss.errors import (
    BadNumbersError,
    ChatTemplateError,
    ChecksumError,
    SpecMismatchError,
    TensorInventoryError,
    VerifyError,
    VocabularyError,
)
from edgeoss.weights.gguf.reader import GGUFModel, TensorInfo, read_model
from edgeoss.weights.report import Report

log = logging.getLogger(__name__)

MXFP4_EXPONENT_RANGE = (127 - 48, 127 + 16)
"""Sane E8M0 scale bytes: 2**-48 .. 2**16. Real and synthetic gpt-oss experts
sit near 2**-7; 0xFF (NaN) and far-off values mean damage."""

_EXPERT_WEIGHTS = ("ffn_gate_exps.weight", "ffn_up_exps.weight", "ffn_down_exps.weight")
_CHUNK = 17 * (1 << 20)  # a multiple of MXFP4's 17-byte block, Q8_0's 34-byte block and 2- and 4-byte floats


def verify(
    path: Path,
    *,
    deep: bool = False,
    sha256: str | None = None,
    expected_variant: spec.Hparams | None = None,
) -> Report:
    """Check the GGUF at `path` (a file, or the first shard of a split file)."""
    return verify_read(path, deep=deep, sha256=sha256, expected_variant=expected_variant)[0]


def verify_read(
    path: Path,
    *,
    deep: bool = False,
    sha256: str | None = None,
    expected_variant: spec.Hparams | None = None,
) -> tuple[Report, GGUFModel | None]:
    """verify(), and the model as read (None when it could not be read), whose
    header bytes a remembered verification is keyed on."""
    report = Report(path=str(path), format="gguf", deep=deep or sha256 is not None)
    model: GGUFModel | None = None
    try:
        model = read_model(path)
        _verify(report, model, deep or sha256 is not None, sha256, expected_variant)
    except VerifyError as exc:
        report.add("read", False, exc.message, type(exc))
    except Exception as exc:  # a bug must not take the process down with it
        log.exception("internal error while verifying %s", path)
        report.add("internal", False, f"internal error while verifying: {exc!r}")
    return report, model


def _verify(
    report: Report, model: GGUFModel, deep: bool, sha256: str | None, expected_variant: spec.Hparams | None
) -> None:
    report.files = [str(p) for p in model.paths]
    report.add(
        "structure", True, f"GGUF v{model.files[0].version}, {len(model.tensors)} tensors, {len(model.files)} file(s)"
    )
    hp = _check_spec(report, model, expected_variant)
    if hp is None:
        return
    if not _check_tensors(report, model, hp):
        return
    _check_vocabulary(report, model, hp)
    _check_template(report, model)
    _quantization(report, model)
    if deep:
        _deep(report, model, sha256)


def _check_spec(report: Report, model: GGUFModel, expected: spec.Hparams | None) -> spec.Hparams | None:
    md = model.metadata
    arch = md.get("general.architecture")
    if not report.add(
        "architecture",
        arch == spec.GGUF_ARCH,
        f"architecture is {arch!r}, expected {spec.GGUF_ARCH!r}",
        SpecMismatchError,
        passed=spec.GGUF_ARCH,
    ):
        return None
    values: dict[str, Any] = {}
    for key, (attribute, kind) in spec.GGUF_HPARAM_KEYS.items():
        full = f"{spec.GGUF_ARCH}.{key}"
        value = md.get(full)
        if value is None:
            if key in spec.GGUF_OPTIONAL_KEYS:
                continue
            report.add(
                "hyper-parameters",
                False,
                f"required key {full} is missing (llama.cpp aborts without it)",
                SpecMismatchError,
            )
            return None
        if kind is int and (not isinstance(value, int) or isinstance(value, bool) or value <= 0):
            report.add("hyper-parameters", False, f"{full} = {value!r} is not a positive integer", SpecMismatchError)
            return None
        if kind is float and not isinstance(value, float | int):
            report.add("hyper-parameters", False, f"{full} = {value!r} is not a number", SpecMismatchError)
            return None
        values[attribute] = value
    scaling = md.get(f"{spec.GGUF_ARCH}.rope.scaling.type")
    if not report.add(
        "rope scaling",
        scaling == "yarn",
        f"rope.scaling.type is {scaling!r}, gpt-oss uses 'yarn'",
        SpecMismatchError,
        passed="yarn",
    ):
        return None
    embd = model.tensors.get("token_embd.weight")
    vocab = embd.shape[0] if embd is not None and len(embd.shape) == 2 else spec.VOCAB_SIZE
    try:
        hp = spec.Hparams(name="gguf", vocab_size=vocab, **values)
    except (TypeError, ValueError) as exc:
        report.add("hyper-parameters", False, str(exc), SpecMismatchError)
        return None

    # Fixed across every gpt-oss (and every synthetic one): attention geometry,
    # positions, routing width. Layers, experts and widths may vary in custom shapes.
    reference = spec.GPT_OSS_20B
    fixed = (
        "head_dim",
        "experts_per_token",
        "sliding_window",
        "rope_theta",
        "rope_scaling_factor",
        "initial_context_length",
        "vocab_size",
    )
    wrong = [
        f"{f} {getattr(hp, f)} (gpt-oss: {getattr(reference, f)})"
        for f in fixed
        if not _same(getattr(hp, f), getattr(reference, f))
    ]
    if not _same(hp.rms_norm_eps, reference.rms_norm_eps):
        wrong.append(f"rms_norm_eps {hp.rms_norm_eps} (gpt-oss: {reference.rms_norm_eps})")
    if not report.add("hyper-parameters", not wrong, "; ".join(wrong) or "match gpt-oss", SpecMismatchError):
        return None

    report.variant = spec.describe_shape(hp)
    if expected is not None:
        diff = [
            f"{f} {getattr(hp, f)} != {getattr(expected, f)}"
            for f in spec.SHAPE_FIELDS
            if getattr(hp, f) != getattr(expected, f)
        ]
        if not report.add("variant", not diff, "; ".join(diff) or f"is {report.variant}", SpecMismatchError):
            return None
    else:
        report.add("variant", True, report.variant)
    return hp.replace(name=report.variant)


def _same(a: float, b: float) -> bool:
    return abs(float(a) - float(b)) <= 1e-6 * max(1.0, abs(float(b)))


# Types a tensor may have: the original MXFP4 for experts; for the rest what
# llama.cpp's converter and common requantizations write.
_VECTOR_TYPES = {"F32", "F16", "BF16"}
_MATRIX_TYPES = {"F32", "F16", "BF16", "Q8_0"}


def _check_tensors(report: Report, model: GGUFModel, hp: spec.Hparams) -> bool:
    expected = {t.name: t for t in hp.gguf_tensors()}
    got = model.tensors
    missing = sorted(set(expected) - set(got))
    if not report.add(
        "tensors present",
        not missing,
        f"{len(missing)} missing, e.g. {missing[:3]}" if missing else f"all {len(expected)}",
        TensorInventoryError,
    ):
        return False
    extra = sorted(set(got) - set(expected))
    if not report.add(
        "no unknown tensors",
        not extra,
        f"{len(extra)} not gpt-oss, e.g. {extra[:3]}" if extra else "none",
        TensorInventoryError,
    ):
        return False
    bad_shapes = [
        f"{n} {list(got[n].shape)} (expected {list(t.shape)})" for n, t in expected.items() if got[n].shape != t.shape
    ]
    if not report.add("tensor shapes", not bad_shapes, "; ".join(bad_shapes[:3]) or "all match", TensorInventoryError):
        return False
    bad_types, requantized = [], []
    for name, t in expected.items():
        actual = got[name].type_name
        if name.endswith(_EXPERT_WEIGHTS):
            if actual != "MXFP4":
                requantized.append(f"{name} {actual}")
        elif len(t.shape) == 1 or name.endswith("_exps.bias"):
            if actual not in _VECTOR_TYPES:
                bad_types.append(f"{name} {actual}")
        elif actual not in _MATRIX_TYPES and actual not in _VECTOR_TYPES:
            requantized.append(f"{name} {actual}")
    if not report.add(
        "tensor types", not bad_types, "; ".join(bad_types[:3]) or "as gpt-oss expects", TensorInventoryError
    ):
        return False
    report.warn(
        "original MXFP4 experts",
        not requantized,
        f"{len(requantized)} tensors requantized (not bit-identical to the release), e.g. {requantized[:2]}"
        if requantized
        else "experts are the release's MXFP4",
    )
    return True


def token_list_digest(tokens: list[str]) -> str:
    return hashlib.sha256("\n".join(tokens).encode("utf-8")).hexdigest()


def _check_vocabulary(report: Report, model: GGUFModel, hp: spec.Hparams) -> None:
    md = model.metadata
    tok_model, pre = md.get("tokenizer.ggml.model"), md.get("tokenizer.ggml.pre")
    if not report.add(
        "tokenizer model",
        tok_model == spec.GGUF_TOKENIZER_MODEL,
        f"tokenizer.ggml.model is {tok_model!r}, expected 'gpt2'",
        VocabularyError,
        passed="gpt2 (byte-level BPE)",
    ):
        return
    if not report.add(
        "pre-tokenizer",
        pre == spec.GGUF_TOKENIZER_PRE,
        f"tokenizer.ggml.pre is {pre!r}, expected 'gpt-4o' (o200k split)",
        VocabularyError,
        passed="gpt-4o (o200k split)",
    ):
        return
    tokens = md.get("tokenizer.ggml.tokens")
    if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
        report.add("vocabulary", False, "tokenizer.ggml.tokens is missing", VocabularyError)
        return
    if not report.add(
        "vocabulary size",
        len(tokens) == hp.vocab_size,
        f"{len(tokens)} tokens, the embedding has {hp.vocab_size} rows",
        VocabularyError,
        passed=f"{len(tokens)} tokens",
    ):
        return
    bpe_ok = token_list_digest(tokens[: spec.BPE_RANKS]) == spec.O200K_GGUF_TOKENS_SHA256
    if not report.add(
        "o200k tokens",
        bpe_ok,
        "the 199998 BPE tokens are not o200k's" if not bpe_ok else f"sha256 {token_list_digest(tokens)[:16]}",
        VocabularyError,
    ):
        return
    wrong = []
    for token_id, text in spec.NAMED_SPECIAL_TOKENS.items():
        actual = tokens[token_id] if token_id < len(tokens) else None
        accepted = {text, f"<|reserved_{token_id}|>"} if token_id == spec.ENDOFPROMPT else {text}
        if actual not in accepted:
            wrong.append(f"{token_id} is {actual!r}, expected {text!r}")
    if not report.add("harmony special tokens", not wrong, "; ".join(wrong[:3]) or "all at their ids", VocabularyError):
        return
    eos = md.get("tokenizer.ggml.eos_token_id")
    report.warn(
        "end token",
        eos in spec.GENERATION_EOS_TOKENS,
        f"eos_token_id {eos}"
        + ("" if eos in spec.GENERATION_EOS_TOKENS else " is not <|return|>, <|endoftext|> or <|call|>"),
    )
    merges = md.get("tokenizer.ggml.merges")
    report.warn(
        "merges",
        isinstance(merges, list) and len(merges) > 0,
        f"{len(merges) if isinstance(merges, list) else 0} merges",
    )


# Markers every working gpt-oss template emits; a template without them
# renders prompts the model was never trained on (generic ChatML, or early
# converter templates that dropped channels or tool calls).
TEMPLATE_MARKERS = ("<|start|>", "<|message|>", "<|channel|>", "<|end|>", "<|call|>", "Reasoning:")


def _check_template(report: Report, model: GGUFModel) -> None:
    template = model.metadata.get("tokenizer.chat_template")
    if not report.add(
        "chat template",
        isinstance(template, str) and bool(template),
        "tokenizer.chat_template is missing",
        ChatTemplateError,
    ):
        return
    assert isinstance(template, str)
    digest = hashlib.sha256(template.encode("utf-8")).hexdigest()
    if digest == spec.CHAT_TEMPLATE_SHA256:
        report.add("chat template", True, "OpenAI's published template")
        return
    missing = [m for m in TEMPLATE_MARKERS if m not in template]
    if not report.add(
        "chat template", not missing, f"known-bad template: never emits {', '.join(missing)}", ChatTemplateError
    ):
        return
    report.warn(
        "chat template", False, f"not OpenAI's published template (sha256 {digest[:16]}); harmony markers present"
    )


def _quantization(report: Report, model: GGUFModel) -> None:
    count: Counter[str] = Counter()
    size: Counter[str] = Counter()
    for t in model.tensors.values():
        count[t.type_name] += 1
        size[t.type_name] += t.nbytes
    report.quantization = {
        "file_type": model.metadata.get("general.file_type"),
        "tensors_by_type": dict(count),
        "bytes_by_type": dict(size),
        "tensor_bytes": sum(size.values()),
    }


# Bit masks of the exponent field: all ones means Inf or NaN.
_NONFINITE = {"F32": (np.uint32, 0x7F800000), "F16": (np.uint16, 0x7C00), "BF16": (np.uint16, 0x7F80)}


@dataclass
class _Scan:
    nonfinite: list[str] = field(default_factory=list)
    bad_scales: list[str] = field(default_factory=list)
    exp_min: int = 255
    exp_max: int = 0

    def record(self, t: TensorInfo, data: bytes) -> None:
        lo, hi, damage = _check_numbers(t, data)
        self.exp_min, self.exp_max = min(self.exp_min, lo), max(self.exp_max, hi)
        target = self.nonfinite if damage == "nonfinite" else self.bad_scales if damage == "scale" else None
        if target is not None and t.name not in target:
            target.append(t.name)


def _scan_file(path: Path, tensors: list[TensorInfo], digest: fsutil.Background, scan: _Scan) -> None:
    """One sequential read of every byte: all of it hashed, tensor data checked."""
    with path.open("rb") as fh:
        position = 0
        for t in sorted(tensors, key=lambda t: t.offset):
            digest.feed(fh.read(t.offset - position))
            position = t.offset
            remaining = t.nbytes
            while remaining:
                data = fh.read(min(_CHUNK, remaining))
                if not data:
                    raise VerifyError(f"{path.name} ended while reading {t.name}")
                digest.feed(data)
                scan.record(t, data)
                remaining -= len(data)
                position += len(data)
        while data := fh.read(_CHUNK):
            digest.feed(data)


def _deep(report: Report, model: GGUFModel, expected_sha256: str | None) -> None:
    scan = _Scan()
    # Hashing runs on a second thread while this one checks the numbers.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        for f in model.files:
            digest = hashlib.sha256()
            hasher = fsutil.Background(pool, digest.update)
            _scan_file(f.path, [t for t in model.tensors.values() if t.file == f.path], hasher, scan)
            hasher.drain()
            report.sha256[f.path.name] = digest.hexdigest()
    report.add(
        "finite floats",
        not scan.nonfinite,
        f"NaN or Inf in {scan.nonfinite[:3]}" if scan.nonfinite else "no NaN or Inf",
        BadNumbersError,
    )
    if scan.exp_min <= scan.exp_max:
        lo, hi = MXFP4_EXPONENT_RANGE
        report.add(
            "MXFP4 scales",
            not scan.bad_scales,
            f"scale exponents outside 2^{lo - 127}..2^{hi - 127} in {scan.bad_scales[:3]}"
            if scan.bad_scales
            else f"exponents 2^{scan.exp_min - 127}..2^{scan.exp_max - 127}",
            BadNumbersError,
        )
    if expected_sha256:
        wanted = expected_sha256.strip().lower()
        actual = list(report.sha256.values())
        ok = wanted in actual if len(actual) > 1 else actual[0] == wanted
        report.add(
            "sha256", ok, f"sha256 {actual[0] if len(actual) == 1 else actual} != expected {wanted}", ChecksumError
        )


def _check_numbers(t: TensorInfo, data: bytes) -> tuple[int, int, str]:
    """(min scale byte, max scale byte, damage kind or '') for one chunk."""
    name = t.type_name
    if name == "MXFP4":
        scales = np.frombuffer(data, dtype=np.uint8)[::17]
        lo, hi = int(scales.min()), int(scales.max())
        bad = lo < MXFP4_EXPONENT_RANGE[0] or hi > MXFP4_EXPONENT_RANGE[1]
        return lo, hi, "scale" if bad else ""
    if name == "Q8_0":
        # Only each block's f16 scale can be NaN or Inf; the int8 codes cannot.
        # _CHUNK is a whole number of 34-byte blocks, so every chunk starts on one.
        whole = len(data) - len(data) % spec.Q8_0_BLOCK_BYTES
        blocks = np.frombuffer(data, dtype=np.uint8, count=whole).reshape(-1, spec.Q8_0_BLOCK_BYTES)
        scales = np.ascontiguousarray(blocks[:, :2]).view(np.uint16)
        if np.any((scales & np.uint16(0x7C00)) == np.uint16(0x7C00)):
            return 255, 0, "nonfinite"
        return 255, 0, ""
    if name in _NONFINITE:
        dtype, mask = _NONFINITE[name]
        bits = np.frombuffer(data, dtype=dtype)
        if np.any((bits & dtype(mask)) == dtype(mask)):
            return 255, 0, "nonfinite"
    return 255, 0, ""


def main(argv: list[str] | None = None) -> None:
    import sys

    args = sys.argv[1:] if argv is None else argv
    if not args:
        raise SystemExit("usage: python -m edgeoss.weights.gguf.checks PATH [--deep]")
    report = verify(Path(args[0]), deep="--deep" in args)
    print(json.dumps(report.to_dict(), indent=2))
    raise SystemExit(report.exit_code)


if __name__ == "__main__":
    main()
