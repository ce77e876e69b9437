"""The CLI's tool loop (run, chat) through the real engines: a forced token
script makes the model call python, the sandbox answers, and the model goes on
to its answer; through llama.cpp and onnxruntime-genai alike (the server's
loop: tests/system/test_tool_loop.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import needs_llama
from edgeoss import harmony
from edgeoss.engines.base import Engine, LoadSettings, Sampling
from edgeoss.runtime.reply import Reply
from edgeoss.tools import loop, sandbox
from edgeoss.tools.python_tool import Sessions
from forced import ForcedScript

needs_llama.llama_cpp()
pytestmark = pytest.mark.skipif(not sandbox.status().available, reason=f"no sandbox: {sandbox.status().detail}")

SCRIPT = (
    "<|channel|>analysis<|message|>Compute.<|end|>"
    "<|start|>assistant to=python<|channel|>analysis code<|message|>value = 6 * 7\nvalue<|call|>"
    "<|channel|>final<|message|>It is 42.<|return|>"
)


@pytest.fixture(scope="module", params=["llama.cpp", "ort"])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    if request.param == "ort":
        pytest.importorskip("onnxruntime_genai")
        from edgeoss.engines.ortgenai.engine import OrtGenAIEngine

        e: Engine = OrtGenAIEngine(request.getfixturevalue("tiny_onnx"), "cpu", context_length=4096)
    else:
        from edgeoss.engines.llamacpp.engine import LlamaCppEngine

        gguf: Path = request.getfixturevalue("tiny_gguf")
        e = LlamaCppEngine(gguf, LoadSettings(context_length=4096, use_mmap=False))
    yield e
    e.close()


def test_the_model_calls_python_and_goes_on(engine: Engine, tmp_path: Path) -> None:
    toolbox = loop.Toolbox(python=Sessions(scratch_root=tmp_path))
    reply = Reply()
    script = ForcedScript(harmony.encoding().encode(SCRIPT, allowed_special="all"))
    try:
        events = list(
            loop.stream(
                engine,
                [harmony.Turn("user", "6 times 7?")],
                harmony.RenderOptions(),
                Sampling(max_tokens=200),
                reply,
                toolbox,
                processor=script,
            )
        )
    finally:
        toolbox.close()
    kinds = [e.kind for e in events if e.kind not in ("reasoning", "content")]
    assert kinds == ["builtin_call", "builtin_result", "done"]
    assert reply.result.content == "It is 42." and reply.result.finish_reason == "stop"
    assert reply.tool_activity == [{"tool": "python", "input": "value = 6 * 7\nvalue", "output": "42"}]
    assert reply.to_dict()["tool_activity"] == reply.tool_activity
