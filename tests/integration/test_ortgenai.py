"""The ONNX Runtime GenAI engine on a tiny synthetic gpt-oss exported by
`edgeoss export-onnx` through onnxruntime-genai's own model builder (fp32,
CPU; the tiny_onnx fixture in conftest.py). Its sampling alone:
tests/unit/test_ortgenai_sampling.py."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from edgeoss import harmony, spec
from edgeoss.engines.base import Sampling, Timings
from edgeoss.engines.ortgenai.engine import OrtGenAIEngine
from forced import ForcedScript

og = pytest.importorskip("onnxruntime_genai")

PROMPT = harmony.render([harmony.Turn("user", "Hello there")], harmony.RenderOptions(date="2026-11-23"))


@pytest.fixture(scope="module")
def engine(tiny_onnx: Path) -> OrtGenAIEngine:
    return OrtGenAIEngine(tiny_onnx, "cpu", context_length=2048)


def test_greedy_tokens_equal_transformers(engine: OrtGenAIEngine, tiny_checkpoint: Path) -> None:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    model = transformers.GptOssForCausalLM.from_pretrained(str(tiny_checkpoint), dtype=torch.float32)
    expected = model.generate(torch.tensor([PROMPT]), max_new_tokens=24, do_sample=False)[0, len(PROMPT) :].tolist()
    got = list(engine.generate(PROMPT, Sampling(temperature=0, max_tokens=24)))
    assert got == expected


class Scores:
    def __init__(self) -> None:
        self.first: np.ndarray | None = None

    def __call__(self, input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        if self.first is None:
            self.first = scores.copy()
        return scores


def test_a_follow_up_rewinds_to_the_shared_prefix_and_its_logits_equal_a_fresh_run(tiny_onnx: Path) -> None:
    engine = OrtGenAIEngine(tiny_onnx, "cpu", context_length=2048)
    first = list(engine.generate(PROMPT, Sampling(max_tokens=40, seed=1)))
    follow = [*PROMPT, *first, *harmony.encoding().encode("<|end|><|start|>user<|message|>More", allowed_special="all")]
    follow += harmony.encoding().encode("<|end|><|start|>assistant", allowed_special="all")
    reused, timings = Scores(), Timings()
    next(iter(engine.generate(follow, Sampling(max_tokens=1), logits_processor=reused, timings=timings)))
    assert timings.cached_tokens == len(PROMPT) + len(first) - 1  # the last reply token was never appended
    fresh = Scores()
    next(iter(OrtGenAIEngine(tiny_onnx, "cpu", 2048).generate(follow, Sampling(max_tokens=1), logits_processor=fresh)))
    assert reused.first is not None and fresh.first is not None
    np.testing.assert_allclose(reused.first, fresh.first, rtol=1e-4, atol=1e-4)


def test_a_rewind_the_sliding_window_no_longer_holds_starts_afresh(tiny_onnx: Path) -> None:
    engine = OrtGenAIEngine(tiny_onnx, "cpu", context_length=2048)
    first = list(engine.generate(PROMPT, Sampling(max_tokens=200, seed=5)))  # well past the 128-token window
    follow = [*PROMPT, *first[:10], *harmony.encoding().encode("<|end|><|start|>assistant", allowed_special="all")]
    reused, timings = Scores(), Timings()
    next(iter(engine.generate(follow, Sampling(max_tokens=1), logits_processor=reused, timings=timings)))
    assert timings.cached_tokens == 0  # refused by onnxruntime-genai, so evaluated afresh
    fresh = Scores()
    next(iter(OrtGenAIEngine(tiny_onnx, "cpu", 2048).generate(follow, Sampling(max_tokens=1), logits_processor=fresh)))
    assert reused.first is not None and fresh.first is not None
    np.testing.assert_allclose(reused.first, fresh.first, rtol=1e-4, atol=1e-4)


def test_n_tokens_cancel_and_stop(engine: OrtGenAIEngine) -> None:
    assert len(list(engine.generate(PROMPT, Sampling(max_tokens=9, seed=2)))) == 9
    cancel = threading.Event()
    got = []
    for token in engine.generate(PROMPT, Sampling(max_tokens=200), cancel=cancel):
        got.append(token)
        if len(got) == 3:
            cancel.set()
    assert len(got) == 3 and engine.last_timings.stop_reason == "cancel"


def test_forced_harmony_script_parses_through_the_same_stack(engine: OrtGenAIEngine) -> None:
    from edgeoss.runtime import reply as generate

    text = "<|channel|>analysis<|message|>Think.<|end|><|start|>assistant<|channel|>final<|message|>Done.<|return|>"
    script = harmony.encoding().encode(text, allowed_special="all")
    reply = generate.Reply()
    events = list(
        generate.stream(
            engine,
            [harmony.Turn("user", "Hi")],
            harmony.RenderOptions(),
            Sampling(max_tokens=len(script) + 4),
            reply,
            logits_processor=ForcedScript(script),
        )
    )
    assert (reply.result.reasoning, reply.result.content, reply.result.finish_reason) == ("Think.", "Done.", "stop")
    assert events[-1].kind == "done" and reply.timings.generated_tokens == len(script)
    assert script[-1] == spec.RETURN


def test_a_missing_provider_falls_back_to_the_cpu(tiny_onnx: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING"):
        engine = OrtGenAIEngine(tiny_onnx, "cuda", context_length=512)
    assert engine.provider == "cpu" and "using the CPU" in caplog.text
    assert len(list(engine.generate(PROMPT, Sampling(max_tokens=2)))) == 2


def test_verify_accepts_the_builder_export(tiny_onnx: Path) -> None:
    from edgeoss.weights.onnx import checks as onnx_folder

    report = onnx_folder.verify(tiny_onnx, deep=True)
    assert report.ok, report.summary()
    assert report.format == "onnx-cpu" and "2 layers" in str(report.variant)
    assert {"model.onnx", "model.onnx.data"} <= set(report.sha256)
