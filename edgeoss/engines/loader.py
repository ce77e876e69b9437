"""Open the engine for a chosen model: llama.cpp for GGUF files,
onnxruntime-genai for ONNX folders.

`open_engine` gives the plain contract (run, chat, benchmarks);
`open_server_engine` the server's queued one (submit with a callback), which
llama.cpp decodes in one batch and onnxruntime-genai one sequence at a time.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from edgeoss.backends import ORT_GENAI, EngineKind
from edgeoss.engines.base import Engine, LoadSettings, QueuedEngine

if TYPE_CHECKING:
    from edgeoss.runtime.choose import Chosen


def open_engine(chosen: Chosen) -> Engine:
    if chosen.engine is ORT_GENAI:
        from edgeoss.engines.ortgenai.engine import OrtGenAIEngine

        return OrtGenAIEngine(chosen.path, chosen.settings.device, chosen.settings.context_length)
    from edgeoss.engines.llamacpp.engine import LlamaCppEngine

    return LlamaCppEngine(chosen.path, chosen.settings)


def open_server_engine(engine: EngineKind, path: Path, settings: LoadSettings, parallel: int) -> QueuedEngine:
    if engine is ORT_GENAI:
        from edgeoss.engines.ortgenai.engine import OrtGenAIEngine
        from edgeoss.engines.serial import SerialEngine

        return SerialEngine(OrtGenAIEngine(path, settings.device, settings.context_length))
    from edgeoss.engines.llamacpp.batch import BatchEngine

    return BatchEngine(path, settings, parallel=parallel)
