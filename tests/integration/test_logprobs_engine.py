"""Log-probabilities against the engine's own logits, on both engines: each
token's entry is the log-softmax of the logits it was sampled from (computed
here independently, in float64), its top alternative at temperature 0 is the
token itself, and the alternatives are in order and sum to at most 1."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import needs_llama
from edgeoss import harmony, spec
from edgeoss.engines.base import Engine, LoadSettings, Sampling
from edgeoss.engines.llamacpp.engine import LlamaCppEngine
from edgeoss.server.logprobs import FLOOR, Recorder, Recording, token_bytes

needs_llama.llama_cpp()

PROMPT = harmony.render([harmony.Turn("user", "Count to ten.")], harmony.RenderOptions(date="2026-11-23"))


@pytest.fixture(scope="module", params=["llama.cpp", "ort"])
def engine(request: pytest.FixtureRequest, tiny_gguf: Path) -> Engine:
    if request.param == "llama.cpp":
        return LlamaCppEngine(tiny_gguf, LoadSettings(context_length=2048, use_mmap=False))
    pytest.importorskip("onnxruntime_genai")
    from edgeoss.engines.ortgenai.engine import OrtGenAIEngine

    return OrtGenAIEngine(request.getfixturevalue("tiny_onnx"), "cpu", context_length=2048)


class Capture:
    """A test double of an earlier processor: it keeps a copy of each step's logits."""

    def __init__(self) -> None:
        self.steps: list[np.ndarray] = []

    def __call__(self, ids: np.ndarray, logits: np.ndarray) -> np.ndarray:
        self.steps.append(np.array(logits, dtype=np.float64))
        return logits


def log_softmax(logits: np.ndarray) -> np.ndarray:
    peak = logits.max()
    return logits - (peak + np.log(np.exp(logits - peak).sum()))  # type: ignore[no-any-return]


@pytest.mark.parametrize("late", [False, True], ids=["asked-at-once", "asked-after-the-next-step"])
def test_logprobs_are_the_engines_log_softmax(engine: Engine, late: bool) -> None:
    capture, recorder = Capture(), Recorder(top=5)
    tokens: list[int] = []
    entries = []
    for step, token in enumerate(
        engine.generate(PROMPT, Sampling(max_tokens=24, temperature=0.0), (), None, Recording(capture, recorder))
    ):
        tokens.append(token)
        if not late:
            entries.append(recorder.entry(step, token))
    if late:  # every entry but the last was made when the next step came
        entries = [recorder.entry(step, token) for step, token in enumerate(tokens)]
    assert len(tokens) == 24 and len(capture.steps) == 24
    for step, (token, entry) in enumerate(zip(tokens, entries, strict=True)):
        assert entry is not None
        expected = log_softmax(capture.steps[step])
        assert entry["bytes"] == list(token_bytes(token))
        assert entry["logprob"] == pytest.approx(expected[token], abs=2e-4)
        top = entry["top_logprobs"]
        assert len(top) == 5 and top[0]["bytes"] == entry["bytes"], "temperature 0 samples the top token"
        values = [t["logprob"] for t in top]
        assert values == sorted(values, reverse=True) and all(v <= 0 for v in values)
        assert sum(np.exp(values)) <= 1 + 1e-6
        best = np.argsort(-expected, kind="stable")[:5]
        assert [t["bytes"] for t in top] == [list(token_bytes(int(t))) for t in best]
    assert recorder.entry(3, tokens[3]) is None, "an entry is given once"


def test_a_refused_token_has_the_floor_not_infinity() -> None:
    recorder = Recorder(top=3)
    logits = np.full(spec.VOCAB_SIZE, -np.inf, dtype=np.float32)
    logits[[10, 20]] = [1.0, 0.0]
    recorder(np.arange(5), logits)
    entry = recorder.entry(0, 10)
    assert entry is not None
    assert entry["logprob"] == pytest.approx(np.log(np.e / (np.e + 1)), abs=1e-5)
    assert [t["logprob"] for t in entry["top_logprobs"]][2] == FLOOR
    assert Recorder(top=99).top == 20
