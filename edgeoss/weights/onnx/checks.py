"""Verify an ONNX Runtime GenAI model folder (genai_config.json + ONNX files).

The folder layout of onnxruntime/gpt-oss-20b-onnx: genai_config.json, the
decoder graph named by model.decoder.filename, its external data file(s),
and the tokenizer files. Checks that the config describes gpt-oss (model
type, vocabulary, end tokens including <|return|> and <|call|>), that every
file it names is present and not empty, and, deep, the sha256 of each file.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from edgeoss import backends, fsutil, spec
from edgeoss.errors import FileAccessError, SpecMismatchError, StructureError, VocabularyError
from edgeoss.resources import sha256_file
from edgeoss.weights.report import Report

CONFIG_FILE = "genai_config.json"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")


def _is_gpt_oss(model_type: Any) -> bool:
    return isinstance(model_type, str) and model_type.lower().replace("_", "").replace("-", "") == "gptoss"


def verify(folder: Path, *, deep: bool = False) -> Report:
    report = Report(path=str(folder), format="onnx", deep=deep)
    try:
        config = fsutil.read_json(folder / CONFIG_FILE)
    except OSError as exc:
        report.add("read", False, f"cannot read {CONFIG_FILE}: {exc.strerror or exc}", FileAccessError)
        return report
    except ValueError as exc:
        report.add("structure", False, str(exc), StructureError)
        return report
    model = config.get("model") if isinstance(config, dict) else None
    if not report.add("structure", isinstance(model, dict), f"{CONFIG_FILE} has no 'model' object", StructureError):
        return report
    assert isinstance(model, dict)
    model_type = model.get("type")
    if not report.add(
        "architecture",
        _is_gpt_oss(model_type),
        f"model type is {fsutil.shown(model_type)}, not gpt-oss",
        SpecMismatchError,
        passed=fsutil.shown(model_type),
    ):
        return report
    decoder = model.get("decoder") if isinstance(model.get("decoder"), dict) else {}
    assert isinstance(decoder, dict)
    layers = decoder.get("num_hidden_layers")
    variant = next((v.name for v in spec.VARIANTS.values() if v.num_layers == layers), None)
    shown = (
        layers if isinstance(layers, int) and 0 < layers <= spec.SHAPE_LIMITS["num_layers"] else "an unknown number of"
    )
    report.variant = variant or f"custom gpt-oss shape ({shown} layers)"
    vocab = model.get("vocab_size")
    if not report.add(
        "vocabulary size",
        vocab == spec.VOCAB_SIZE,
        f"vocab_size {fsutil.shown(vocab)}, gpt-oss has {spec.VOCAB_SIZE}",
        VocabularyError,
        passed=f"{vocab} tokens",
    ):
        return report
    eos = model.get("eos_token_id")
    eos_ids = {i for i in (eos if isinstance(eos, list) else [eos]) if isinstance(i, int) and not isinstance(i, bool)}
    missing_stops = [t for t in spec.STOP_TOKENS if t not in eos_ids]
    if not report.add(
        "end tokens",
        not missing_stops,
        f"eos_token_id {fsutil.shown(eos)} lacks {missing_stops} (<|return|> 200002 and <|call|> 200012 end a turn)",
        VocabularyError,
        passed=str(sorted(eos_ids)),
    ):
        return report

    filename = decoder.get("filename")
    if not report.add(
        "decoder file",
        isinstance(filename, str) and bool(filename),
        "model.decoder.filename is missing",
        StructureError,
    ):
        return report
    assert isinstance(filename, str)
    try:
        fsutil.relative_path(filename, "model.decoder.filename")
        if "/" in filename:
            raise ValueError(f"model.decoder.filename {fsutil.shown(filename)} is not a file beside {CONFIG_FILE}")
    except ValueError as exc:
        report.add("decoder file", False, str(exc), StructureError)
        return report
    graph = folder / filename
    needed = [graph, *(folder / name for name in external_data(graph))]
    needed += [folder / name for name in TOKENIZER_FILES]
    problems = []
    sizes: dict[str, int] = {}
    for path in dict.fromkeys(needed):
        if not path.is_file():
            problems.append(f"{path.name} is missing")
        elif path.stat().st_size == 0:
            problems.append(f"{path.name} is empty")
        else:
            sizes[path.name] = path.stat().st_size
    total = sum(sizes.values())
    if not report.add(
        "files", not problems, "; ".join(problems), FileAccessError, passed=f"{len(sizes)} files, {total / 1e9:.2f} GB"
    ):
        return report
    report.quantization = {"bytes_by_file": sizes, "tensor_bytes": total}
    report.format = backends.onnx_format(provider(decoder))
    if deep:
        for path in model_files(folder):
            report.sha256[path.relative_to(folder).as_posix()] = sha256_file(path)
    return report


# ONNX keeps large weights in external files, named in each tensor's
# external_data as a StringStringEntryProto {key: "location", value: NAME}:
# field 1 (key) tag 0x0a, length 8, "location", then field 2 (value) tag 0x12.
_LOCATION = b"\x0a\x08location\x12"
_MAX_GRAPH_SCAN = 512 * 1024 * 1024


def external_data(graph: Path) -> list[str]:
    """File names the ONNX graph stores its weights in (without parsing ONNX)."""
    if not graph.is_file() or graph.stat().st_size > _MAX_GRAPH_SCAN:
        return []
    data = graph.read_bytes()
    names: dict[str, None] = {}
    start = data.find(_LOCATION)
    while start >= 0:
        at = start + len(_LOCATION)
        length = data[at] if at < len(data) else 0
        if 0 < length < 128:  # one-byte varint: any real file name
            raw = data[at + 1 : at + 1 + length]
            with contextlib.suppress(UnicodeDecodeError):
                names[raw.decode("utf-8")] = None
        start = data.find(_LOCATION, at)
    return [n for n in names if "/" not in n and "\\" not in n and n not in (".", "..")]


def model_files(folder: Path) -> list[Path]:
    """Every file of the model folder (hidden files and folders excepted)."""
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def provider(decoder: dict[str, Any]) -> str:
    """The execution provider the folder was exported for: cuda, dml, webgpu or cpu."""
    session = decoder.get("session_options")
    options = session.get("provider_options") if isinstance(session, dict) else None
    entries = options if isinstance(options, list) else []
    names = [key.lower() for entry in entries if isinstance(entry, dict) for key in entry]
    for known in ("cuda", "dml", "webgpu"):
        if known in names:
            return known
    return "cpu"
