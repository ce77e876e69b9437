"""A test double of an ONNX Runtime GenAI model folder (used by the store, pull,
bundle and ONNX command tests)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from edgeoss import spec
from edgeoss.weights.onnx import checks as onnx_folder


def onnx_layout_double(folder: Path, *, eos: list[int] | None = None, model_type: str = "gpt_oss") -> Path:
    """An ONNX GenAI folder with the real file layout and config, whose graph
    files are placeholder bytes: enough for the folder checks, which do not
    parse ONNX (loading is the ORT engine's job)."""
    folder.mkdir(parents=True)
    config = {
        "model": {
            "type": model_type,
            "vocab_size": spec.VOCAB_SIZE,
            "bos_token_id": spec.STARTOFTEXT,
            "eos_token_id": eos if eos is not None else [spec.RETURN, spec.ENDOFTEXT, spec.CALL],
            "context_length": 131072,
            "decoder": {
                "filename": "model.onnx",
                "num_hidden_layers": 24,
                "session_options": {"provider_options": [{"cuda": {}}]},
            },
        }
    }
    (folder / onnx_folder.CONFIG_FILE).write_text(json.dumps(config))
    # The graph names its external weights file the way ONNX protobuf does.
    location = b"\x0a\x08location\x12" + bytes([len(b"model.onnx.data")]) + b"model.onnx.data"
    (folder / "model.onnx").write_bytes(b"onnx-graph" * 50 + location + b"onnx-graph" * 50)
    (folder / "model.onnx.data").write_bytes(os.urandom(4096))
    (folder / "tokenizer.json").write_text("{}")
    (folder / "tokenizer_config.json").write_text("{}")
    return folder
