"""Verify an ONNX Runtime GenAI model folder (genai_config.json + ONNX files).

The folder layout of onnxruntime/gpt-oss-20b-onnx: genai_config.json, the
decoder graph named by model.decoder.filename, its external data file(s),
and the tokenizer files. Checks that the config describes gpt-oss (model
type, vocabulary, end tokens including <|return|> and <|call|>), that every
file it names is present and not empty, and, deep, the sha256 of each file.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from edgeoss import spec
from edgeoss.errors import FileAccessError, SpecMismatchError, StructureError, VocabularyError
from edgeoss.report import Report

CONFIG_FILE = "genai_config.json"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")


def _is_gpt_oss(model_type: Any) -> bool:
    return isinstance(model_type, str) and model_type.lower().replace("_", "").replace("-", "") == "gptoss"


def verify(folder: Path, *, deep: bool = False) -> Report:
    report = Report(path=str(folder), deep=deep)
    try:
        config = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    except OSError as exc:
        report.add("read", False, f"cannot read {CONFIG_FILE}: {exc.strerror or exc}", FileAccessError)
        return report
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        report.add("structure", False, f"{CONFIG_FILE} is not valid JSON: {exc}", StructureError)
        return report
    model = config.get("model") if isinstance(config, dict) else None
    if not report.add("structure", isinstance(model, dict), f"{CONFIG_FILE} has no 'model' object", StructureError):
        return report
    assert isinstance(model, dict)
    model_type = model.get("type")
    if not report.add(
        "architecture",
        _is_gpt_oss(model_type),
        f"model type is {model_type!r}, not gpt-oss",
        SpecMismatchError,
        passed=str(model_type),
    ):
        return report
    decoder = model.get("decoder") if isinstance(model.get("decoder"), dict) else {}
    assert isinstance(decoder, dict)
    layers = decoder.get("num_hidden_layers")
    variant = next((v.name for v in spec.VARIANTS.values() if v.num_layers == layers), None)
    report.variant = variant or f"custom gpt-oss shape ({layers} layers)"
    vocab = model.get("vocab_size")
    if not report.add(
        "vocabulary size",
        vocab == spec.VOCAB_SIZE,
        f"vocab_size {vocab!r}, gpt-oss has {spec.VOCAB_SIZE}",
        VocabularyError,
        passed=f"{vocab} tokens",
    ):
        return report
    eos = model.get("eos_token_id")
    eos_ids = set(eos) if isinstance(eos, list) else {eos}
    missing_stops = [t for t in spec.STOP_TOKENS if t not in eos_ids]
    if not report.add(
        "end tokens",
        not missing_stops,
        f"eos_token_id {eos!r} lacks {missing_stops} (<|return|> 200002 and <|call|> 200012 end a turn)",
        VocabularyError,
        passed=str(sorted(i for i in eos_ids if isinstance(i, int))),
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
    graph = folder / filename
    if graph.resolve().parent != folder.resolve():
        report.add("decoder file", False, f"decoder filename {filename!r} points outside the folder", StructureError)
        return report
    needed = [graph, *sorted(folder.glob(f"{graph.name}.data")), *sorted(folder.glob("*.onnx.data"))]
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
    if deep:
        for name in sizes:
            digest = hashlib.sha256()
            with (folder / name).open("rb") as fh:
                while chunk := fh.read(16 << 20):
                    digest.update(chunk)
            report.sha256[name] = digest.hexdigest()
    return report
