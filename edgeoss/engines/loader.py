"""Open the engine for a chosen model: llama.cpp for GGUF files,
onnxruntime-genai for ONNX folders.

`open_engine` gives the plain contract (run, chat, benchmarks);
`open_server_engine` the server's queued one (submit with a callback), which
llama.cpp decodes in one batch and onnxruntime-genai one sequence at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from edgeoss.backends import ORT_GENAI, EngineKind
from edgeoss.engines.base import Engine, LoadSettings, QueuedEngine

if TYPE_CHECKING:
    from edgeoss.runtime.choose import Chosen


def open_engine(chosen: Chosen, while_loading: Callable[[], object] | None = None) -> Engine:
    """The engine for `chosen`; `while_loading` is called as the weights start
    loading (llama.cpp reads them in C, without the GIL: other Python work
    started then runs beside it instead of queueing behind it)."""
    if chosen.engine is ORT_GENAI:
        from edgeoss.engines.ortgenai.engine import OrtGenAIEngine

        if while_loading is not None:
            while_loading()
        return OrtGenAIEngine(chosen.path, chosen.settings.device, chosen.settings.context_length)
    from edgeoss.engines.llamacpp.engine import LlamaCppEngine

    return LlamaCppEngine(chosen.path, chosen.settings, while_loading)


def open_server_engine(engine: EngineKind, path: Path, settings: LoadSettings, parallel: int) -> QueuedEngine:
    if engine is ORT_GENAI:
        from edgeoss.engines.ortgenai.engine import OrtGenAIEngine
        from edgeoss.engines.serial import SerialEngine

        return SerialEngine(OrtGenAIEngine(path, settings.device, settings.context_length))
    from edgeoss.engines.llamacpp.batch import BatchEngine

    return BatchEngine(path, settings, parallel=parallel)
