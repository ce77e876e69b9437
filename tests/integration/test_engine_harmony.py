"""The llama.cpp engine and the harmony layer, through the real model.

Token scripts are forced through the engine with a logits processor
(tests/support/forced.py), so the real engine decodes them and the real parser
reads them. The script tests run through onnxruntime-genai too. (The harmony
layer without an engine: tests/unit/test_harmony.py.)
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

import needs_llama
from edgeoss import harmony, spec
from edgeoss.engines.base import Engine, LoadSettings, Sampling
from edgeoss.engines.llamacpp import engine as llamacpp
from edgeoss.engines.llamacpp.engine import EngineError, LlamaCppEngine
from edgeoss.engines.llamacpp.placement import unsupported_reason
from edgeoss.weights import synth
from forced import ForcedScript
from gguf_tools import rewrite

needs_llama.llama_cpp()

enc = harmony.encoding


@pytest.fixture(scope="module")
def engine(tiny_gguf: Path) -> LlamaCppEngine:
    return LlamaCppEngine(tiny_gguf, LoadSettings(context_length=2048, use_mmap=False))


@pytest.fixture(scope="module", params=["llama.cpp", "ort"])
def script_engine(request: pytest.FixtureRequest, engine: LlamaCppEngine) -> Engine:
    """Each engine the forced-script harmony tests run through."""
    if request.param == "llama.cpp":
        return engine
    pytest.importorskip("onnxruntime_genai")
    from edgeoss.engines.ortgenai.engine import OrtGenAIEngine

    return OrtGenAIEngine(request.getfixturevalue("tiny_onnx"), "cpu", context_length=2048)


PROMPT = harmony.render(
    [harmony.Turn("user", "What is the weather in Paris?")], harmony.RenderOptions(date="2026-11-23")
)


def run_script(engine: Engine, text: str) -> harmony.StreamParser:
    script = enc().encode(text, allowed_special="all")
    parser = harmony.StreamParser()
    for token in engine.generate(
        PROMPT, Sampling(max_tokens=len(script) + 5), stop=spec.STOP_TOKENS, logits_processor=ForcedScript(script)
    ):
        parser.feed(token)
    if not parser.result.finish_reason:
        parser.finish(engine.last_timings.stop_reason)
    return parser


def test_generates_exactly_n_tokens(engine: LlamaCppEngine) -> None:
    tokens = list(engine.generate(PROMPT, Sampling(max_tokens=17, seed=3)))
    assert len(tokens) == 17 == engine.last_timings.generated_tokens
    assert engine.last_timings.stop_reason == "length" and engine.last_timings.tokens_per_s > 0


def test_cancel_stops_within_one_token(engine: LlamaCppEngine) -> None:
    cancel = threading.Event()
    seen = 0
    for _ in engine.generate(PROMPT, Sampling(max_tokens=200), cancel=cancel):
        seen += 1
        if seen == 3:
            cancel.set()
    assert seen == 3 and engine.last_timings.stop_reason == "cancel"


def test_second_turn_reuses_the_kv_cache(engine: LlamaCppEngine) -> None:
    first = list(engine.generate(PROMPT, Sampling(max_tokens=10, seed=1)))
    follow_up = (
        PROMPT
        + first
        + enc().encode("<|end|><|start|>user<|message|>And tomorrow?<|end|><|start|>assistant", allowed_special="all")
    )
    list(engine.generate(follow_up, Sampling(max_tokens=3, seed=1)))
    # Every token of the first turn that was decoded stays cached: only the new ones are evaluated.
    assert engine.last_timings.cached_tokens == len(PROMPT) + len(first) - 1
    list(engine.generate([*PROMPT[:5], 42, 43], Sampling(max_tokens=2)))
    assert engine.last_timings.cached_tokens == 5


class Scores:
    """Records the logits of the first generated token (and changes nothing)."""

    def __init__(self) -> None:
        self.first: np.ndarray | None = None

    def __call__(self, input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        if self.first is None:
            self.first = scores.copy()
        return scores


def test_prefix_reuse_never_reads_evicted_sliding_window_cache(tiny_gguf: Path) -> None:
    # With a small micro-batch the sliding-window layers keep only the last
    # 128 + 64 positions: after a long reply, the start of the prompt is gone
    # from that cache, and reusing the prefix would attend to missing entries.
    engine = LlamaCppEngine(tiny_gguf, LoadSettings(context_length=1024, n_ubatch=64, use_mmap=False))
    try:
        prefix = PROMPT[:-4]
        follow = [*prefix, *enc().encode("Tell me more.")]
        assert len(list(engine.generate(PROMPT, Sampling(max_tokens=400, seed=1)))) == 400
        reused = Scores()
        next(iter(engine.generate(follow, Sampling(max_tokens=1), logits_processor=reused)))
        assert engine.last_timings.cached_tokens == 0  # too much was evicted: evaluated afresh
        engine.llm.reset()  # type: ignore[no-untyped-call]
        engine.llm._ctx.kv_cache_clear()  # type: ignore[no-untyped-call]
        cold = Scores()
        next(iter(engine.generate(follow, Sampling(max_tokens=1), logits_processor=cold)))
        assert reused.first is not None and cold.first is not None
        np.testing.assert_allclose(reused.first, cold.first, rtol=1e-4, atol=1e-4)
        # After a short reply nothing was evicted, and the prefix is reused.
        list(engine.generate(PROMPT, Sampling(max_tokens=8)))
        next(iter(engine.generate(follow, Sampling(max_tokens=1))))
        assert engine.last_timings.cached_tokens == len(prefix)
    finally:
        engine.close()


def test_unverified_file_is_refused(tiny_gguf: Path, tmp_path: Path) -> None:
    broken = rewrite(tiny_gguf, tmp_path / "broken.gguf", drop=("gpt-oss.attention.sliding_window",))
    with pytest.raises(EngineError, match="refusing to load"):
        LlamaCppEngine(broken)


def test_this_binding_can_keep_experts_on_the_cpu() -> None:
    assert unsupported_reason() is None


def test_without_expert_overrides_whole_layers_stay_on_the_cpu(
    tiny_gguf: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # test double for an older binding that has no tensor_buft_overrides field
    monkeypatch.setattr(llamacpp, "unsupported_reason", lambda: "no tensor_buft_overrides field")
    layers = synth.SCALES["tiny"].num_layers
    with caplog.at_level("WARNING", logger="edgeoss.engines.llamacpp.engine"):
        engine = LlamaCppEngine(tiny_gguf, LoadSettings(n_gpu_layers=layers + 1, n_cpu_moe_layers=1, use_mmap=False))
    try:
        assert (engine.settings.n_gpu_layers, engine.settings.n_cpu_moe_layers) == (layers, 0)
        assert "1 whole layers stay on the CPU" in caplog.text
        assert "no tensor_buft_overrides field" in caplog.text
        assert len(list(engine.generate(PROMPT, Sampling(max_tokens=3)))) == 3
    finally:
        engine.close()


def test_analysis_then_final(script_engine: Engine) -> None:
    p = run_script(
        script_engine,
        "<|channel|>analysis<|message|>The user wants weather.<|end|>"
        "<|start|>assistant<|channel|>final<|message|>It is sunny.<|return|>",
    )
    r = p.result
    assert (r.reasoning, r.content, r.finish_reason, r.malformed) == (
        "The user wants weather.",
        "It is sunny.",
        "stop",
        0,
    )
    assert r.reasoning_tokens == len(enc().encode("The user wants weather."))


@pytest.mark.parametrize("channel", ["commentary", "analysis"])
def test_tool_call_on_either_channel(script_engine: Engine, channel: str) -> None:
    p = run_script(
        script_engine,
        f'<|channel|>{channel} to=functions.get_weather <|constrain|>json<|message|>{{"city": "Paris"}}<|call|>',
    )
    (call,) = p.result.tool_calls
    assert (call.name, call.arguments, p.result.finish_reason) == ("get_weather", '{"city": "Paris"}', "tool_calls")
    assert p.result.content == "" and p.result.reasoning == ""


def test_preamble_then_call(script_engine: Engine) -> None:
    p = run_script(
        script_engine,
        "<|channel|>analysis<|message|>Check it.<|end|>"
        "<|start|>assistant<|channel|>commentary<|message|>Looking that up.<|end|>"
        "<|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>"
        '{"city":"Paris"}<|call|>',
    )
    r = p.result
    assert r.preamble == "Looking that up." and r.reasoning == "Check it." and r.content == ""
    assert [c.name for c in r.tool_calls] == ["get_weather"]


def test_structured_output(script_engine: Engine) -> None:
    p = run_script(script_engine, '<|channel|>final<|message|>{"temperature": 21, "unit": "C"}<|return|>')
    assert p.result.content == '{"temperature": 21, "unit": "C"}'


@pytest.mark.parametrize(
    "script",
    [
        "<|message|>no channel<|return|>",
        "<|channel|>analysis<|message|>secret thoughts<|start|><|start|><|channel|><|return|>",
        "<|channel|>analysis<|message|>thinking<|constrain|><|constrain|> more<|return|>",
        "just text with no header<|end|><|return|>",
        "<|channel|>final<|message|>answer<|call|>",
    ],
)
def test_malformed_output_never_raises_and_never_leaks_analysis(script_engine: Engine, script: str) -> None:
    p = run_script(script_engine, script)
    r = p.result
    assert r.finish_reason in ("stop", "tool_calls")
    assert "secret" not in r.content and "thinking" not in r.content
