"""Verify an original gpt-oss checkpoint folder (Hugging Face layout: config.json,
safetensors shards, tokenizer.json): what vLLM, transformers and `edgeoss convert`
load. The same checks as a GGUF's where the format allows:

- spec: config.json describes gpt-oss, and which variant (or a custom shape);
- tensors: every gpt-oss tensor present once, with its shape, the experts as
  MXFP4 bytes (blocks and scales), the index consistent with the shards
  (weights/checkpoint.py reads the headers, bounded before anything is sized by them);
- vocabulary: tokenizer.json holds o200k's 199998 tokens and the harmony
  special tokens at their ids; the chat template, when there is one, is harmony's;
- deep: every file's sha256 (against --sha256 when given), no NaN or Inf in
  a float tensor, every MXFP4 scale in the range gpt-oss uses.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from edgeoss import fsutil, spec
from edgeoss.errors import (
    BadNumbersError,
    ChatTemplateError,
    CheckpointError,
    ChecksumError,
    FileAccessError,
    SpecMismatchError,
    TensorInventoryError,
    VocabularyError,
)
from edgeoss.weights import checkpoint
from edgeoss.weights.gguf.checks import MXFP4_EXPONENT_RANGE, TEMPLATE_MARKERS, token_list_digest
from edgeoss.weights.report import Report

TOKENIZER_FILE = "tokenizer.json"
TEMPLATE_FILES = ("chat_template.jinja", "tokenizer_config.json")
MAX_TOKENIZER_BYTES = 64 << 20  # o200k's tokenizer.json is about 27 MB
_NONFINITE = {"BF16": (np.uint16, 0x7F80), "F16": (np.uint16, 0x7C00), "F32": (np.uint32, 0x7F800000)}
_CHUNK = 16 << 20


def is_checkpoint(folder: Path) -> bool:
    return (folder / "config.json").is_file() and (
        (folder / checkpoint.SINGLE_FILE).is_file() or (folder / checkpoint.INDEX_FILE).is_file()
    )


def verify(folder: Path, *, deep: bool = False, sha256: str | None = None) -> Report:
    report = Report(path=str(folder), format="safetensors", deep=deep)
    try:
        config = fsutil.read_json(folder / "config.json")
    except OSError as exc:
        report.add("read", False, f"cannot read config.json: {exc.strerror or exc}", FileAccessError)
        return report
    except ValueError as exc:
        report.add("read", False, f"config.json is not JSON: {exc}", FileAccessError)
        return report
    try:
        hp = checkpoint.hparams_from_config(config if isinstance(config, dict) else {})
    except CheckpointError as exc:
        report.add("spec", False, exc.message, SpecMismatchError)
        return report
    variant = next((v.name for v in spec.VARIANTS.values() if _same_shape(v, hp)), None)
    report.variant = variant or f"custom gpt-oss shape ({hp.num_layers} layers, {hp.num_experts} experts)"
    report.add("spec", True, "", passed=report.variant)
    try:
        opened = checkpoint.open_checkpoint(folder)
    except CheckpointError as exc:
        report.add("tensors", False, exc.message, TensorInventoryError)
        return report
    files = sorted({t.file for t in opened.tensors.values()})
    report.files = [f.name for f in files]
    experts = sum(t.nbytes for t in opened.tensors.values() if t.dtype == "U8")
    report.add(
        "tensors",
        True,
        "",
        passed=f"{len(opened.tensors)} tensors in {len(files)} file(s), experts MXFP4 ({experts / 1e9:.2f} GB)",
    )
    report.quantization = {"experts": "MXFP4", "other": sorted({t.dtype for t in opened.tensors.values()} - {"U8"})}
    _check_vocabulary(report, folder, hp)
    _check_template(report, folder)
    if deep or sha256:
        _deep(report, opened, files, sha256)
    return report


def _same_shape(variant: spec.Hparams, hp: spec.Hparams) -> bool:
    keys = ("num_layers", "num_experts", "hidden_size", "intermediate_size", "num_attention_heads", "vocab_size")
    return all(getattr(variant, k) == getattr(hp, k) for k in keys)


def _check_vocabulary(report: Report, folder: Path, hp: spec.Hparams) -> None:
    path = folder / TOKENIZER_FILE
    try:
        size = path.stat().st_size
    except OSError:
        report.add("vocabulary", False, f"{TOKENIZER_FILE} is missing: no engine can tokenize", VocabularyError)
        return
    if size > MAX_TOKENIZER_BYTES:  # bounded before it is read
        report.add("vocabulary", False, f"{TOKENIZER_FILE} is {size / 1e6:.0f} MB, not o200k's", VocabularyError)
        return
    try:
        data = fsutil.read_json(path)
    except (OSError, ValueError) as exc:
        report.add("vocabulary", False, f"{TOKENIZER_FILE} cannot be read: {exc}", VocabularyError)
        return
    model = data.get("model") if isinstance(data, dict) else None
    vocab = model.get("vocab") if isinstance(model, dict) else None
    if not isinstance(vocab, dict):
        report.add("vocabulary", False, f"{TOKENIZER_FILE} has no model.vocab", VocabularyError)
        return
    by_id: list[str | None] = [None] * spec.BPE_RANKS
    for text, token_id in vocab.items():
        if isinstance(token_id, int) and 0 <= token_id < spec.BPE_RANKS and isinstance(text, str):
            by_id[token_id] = text
    missing = sum(t is None for t in by_id)
    ok = not missing and token_list_digest([t or "" for t in by_id]) == spec.O200K_GGUF_TOKENS_SHA256
    if not report.add(
        "o200k tokens",
        ok,
        f"{missing} of the 199998 BPE ids are missing" if missing else "the 199998 BPE tokens are not o200k's",
        VocabularyError,
        passed="the 199998 BPE tokens are o200k's",
    ):
        return
    added = data.get("added_tokens") if isinstance(data, dict) else None
    specials = {
        t.get("id"): t.get("content") for t in (added if isinstance(added, list) else []) if isinstance(t, dict)
    }
    wrong = []
    for token_id, text in spec.NAMED_SPECIAL_TOKENS.items():
        accepted = {text, f"<|reserved_{token_id}|>"} if token_id == spec.ENDOFPROMPT else {text}
        if specials.get(token_id) not in accepted:
            wrong.append(f"{token_id} is {specials.get(token_id)!r}, expected {text!r}")
    report.add("harmony special tokens", not wrong, "; ".join(wrong[:3]) or "all at their ids", VocabularyError)
    report.warn(
        "vocabulary size",
        hp.vocab_size == spec.VOCAB_SIZE,
        f"the embedding has {hp.vocab_size} rows (o200k_harmony: {spec.VOCAB_SIZE})",
    )


def _check_template(report: Report, folder: Path) -> None:
    text = ""
    for name in TEMPLATE_FILES:
        path = folder / name
        if path.is_file() and path.stat().st_size < MAX_TOKENIZER_BYTES:
            raw = path.read_text(encoding="utf-8", errors="replace")
            text = raw if name.endswith(".jinja") else str(_template_of(raw))
            if text:
                break
    if not text:
        report.warn("chat template", False, "none in the folder: the engine must bring harmony's own")
        return
    absent = [m for m in TEMPLATE_MARKERS if m not in text]
    report.add(
        "chat template",
        not absent,
        f"not harmony's: it never emits {', '.join(absent)}",
        ChatTemplateError,
        passed="harmony's (channels, tool calls, reasoning effort)",
    )


def _template_of(tokenizer_config: str) -> Any:
    try:
        data = json.loads(tokenizer_config)
    except ValueError:
        return ""
    return data.get("chat_template", "") if isinstance(data, dict) else ""


def _deep(report: Report, opened: checkpoint.Checkpoint, files: list[Path], sha256: str | None) -> None:
    for path in sorted({*files, *(p for p in opened.root.iterdir() if p.is_file() and p.suffix == ".json")}):
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            while chunk := fh.read(_CHUNK):
                digest.update(chunk)
        report.sha256[path.name] = digest.hexdigest()
    nonfinite, bad_scales = [], []
    lo_seen, hi_seen = 255, 0
    lo, hi = MXFP4_EXPONENT_RANGE
    for name, tensor in opened.tensors.items():
        if name.endswith("_scales"):
            for data in tensor.chunks(_CHUNK):
                scales = np.frombuffer(data, dtype=np.uint8)
                lo_seen, hi_seen = min(lo_seen, int(scales.min())), max(hi_seen, int(scales.max()))
                if (int(scales.min()) < lo or int(scales.max()) > hi) and name not in bad_scales:
                    bad_scales.append(name)
        elif tensor.dtype in _NONFINITE:
            dtype, mask = _NONFINITE[tensor.dtype]
            for data in tensor.chunks(_CHUNK - _CHUNK % 4):
                bits = np.frombuffer(data, dtype=dtype)
                if np.any((bits & dtype(mask)) == dtype(mask)):
                    nonfinite.append(name)
                    break
    report.add(
        "finite floats",
        not nonfinite,
        f"NaN or Inf in {nonfinite[:3]}" if nonfinite else "no NaN or Inf",
        BadNumbersError,
    )
    report.add(
        "MXFP4 scales",
        not bad_scales,
        f"scale exponents outside 2^{lo - 127}..2^{hi - 127} in {bad_scales[:3]}"
        if bad_scales
        else f"exponents 2^{lo_seen - 127}..2^{hi_seen - 127}",
        BadNumbersError,
    )
    if sha256:
        wanted = sha256.strip().lower()
        report.add(
            "sha256",
            wanted in report.sha256.values(),
            f"no file's sha256 is {wanted}",
            ChecksumError,
            passed=f"{next((n for n, d in report.sha256.items() if d == wanted), '')} matches",
        )
