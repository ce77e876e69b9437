"""Open the engine for a chosen model: llama.cpp for GGUF files,
onnxruntime-genai for ONNX folders.

`open_engine` gives the plain contract (run, chat, benchmarks);
`open_server_engine` the server's queued one (submit with a callback), which
llama.cpp decodes in one batch and onnxruntime-genai one sequence at a time.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgeoss.engines.llamacpp import Settings

if TYPE_CHECKING:
    from edgeoss.models import Chosen


def open_engine(chosen: Chosen) -> Any:
    if chosen.backend == "ort":
        from edgeoss.engines.ortgenai import OrtGenAIEngine

        return OrtGenAIEngine(chosen.path, chosen.provider, chosen.settings.context_length)
    from edgeoss.engines.llamacpp import LlamaCppEngine

    return LlamaCppEngine(chosen.path, chosen.settings)


def open_server_engine(backend: str, provider: str, path: Path, settings: Settings, parallel: int) -> Any:
    if backend == "ort":
        from edgeoss.engines.ortgenai import OrtGenAIEngine
        from edgeoss.engines.serial import SerialEngine

        return SerialEngine(OrtGenAIEngine(path, provider, settings.context_length))
    from edgeoss.engines.llamacpp_batch import BatchEngine

    return BatchEngine(path, settings, parallel=parallel)
