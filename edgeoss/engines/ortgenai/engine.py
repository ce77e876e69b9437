"""The ONNX Runtime GenAI engine (onnxruntime-genai), behind the same contract
as llama.cpp: prompt ids in, token ids out.

onnxruntime-genai's own search is not used: the engine appends tokens, reads
the last logits and samples itself (temperature, top_k, top_p, min_p, seed,
logits processors), so that every backend samples the same way. A follow-up
turn rewinds the generator to the prefix it shares with the previous sequence
(onnxruntime-genai's rewind_to) and appends only the rest: reusing a
generator without rewinding gives wrong logits. Where the sliding-window
layers no longer hold that point, onnxruntime-genai refuses the rewind and
the prompt is evaluated afresh.

The execution provider comes from the plan (cuda, dml, webgpu, cpu); when it
cannot be created the engine falls back to the CPU and says so.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgeoss.backends import ORT_GENAI
from edgeoss.engines.base import LogitsProcessor, Sampling, Timings, check_prompt, reusable_prefix, sampled
from edgeoss.engines.ortgenai import binding as ort_binding
from edgeoss.errors import EngineError

log = logging.getLogger(__name__)

PROVIDERS = {"cuda": "cuda", "dml": "dml", "webgpu": "WebGPU", "cpu": ""}
# The context when no plan sets one: onnxruntime-genai allocates the KV cache
# of the full-attention layers for the whole max_length up front.
DEFAULT_CONTEXT = 8192


def _module() -> Any:
    return ort_binding.load()


def sample(logits: np.ndarray, sampling: Sampling, rng: np.random.Generator) -> int:
    """One token from `logits` as `sampling` says (greedy at temperature 0)."""
    if sampling.temperature <= 0:
        return int(np.argmax(logits))
    scores = logits.astype(np.float64) / sampling.temperature
    if sampling.top_k > 0 and sampling.top_k < scores.size:
        cut = np.partition(scores, -sampling.top_k)[-sampling.top_k]
        scores = np.where(scores < cut, -np.inf, scores)
    probs = np.exp(scores - scores.max())
    probs /= probs.sum()
    if sampling.min_p > 0:
        probs = np.where(probs < sampling.min_p * probs.max(), 0.0, probs)
        probs /= probs.sum()
    if sampling.top_p < 1.0:
        order = np.argsort(-probs)
        keep = np.cumsum(probs[order]) - probs[order] < sampling.top_p  # the smallest set reaching top_p
        mask = np.zeros_like(probs, dtype=bool)
        mask[order[keep]] = True
        probs = np.where(mask, probs, 0.0)
        probs /= probs.sum()
    return int(rng.choice(probs.size, p=probs))


class OrtGenAIEngine:
    name = ORT_GENAI.label

    def __init__(
        self, folder: Path, provider: str = "cpu", context_length: int = DEFAULT_CONTEXT, fallback: bool = True
    ) -> None:
        og = _module()
        if provider not in PROVIDERS:
            raise EngineError(f"unknown execution provider {provider!r}; choose {', '.join(PROVIDERS)}")
        self.og = og
        self.provider = provider
        self.placement = provider if provider == "cpu" else f"{provider} execution provider"
        try:
            self.model = og.Model(self._config(folder, provider))
        except Exception as exc:
            if provider == "cpu" or not fallback:
                raise EngineError(f"onnxruntime-genai could not load {folder} on {provider}: {exc}") from exc
            # Whether a provider works shows only when a model is created on it
            # (is_*_available says what was compiled in, not what this machine runs).
            log.warning("the %s execution provider could not load %s (%s); using the CPU", provider, folder, exc)
            self.provider = "cpu"
            self.placement = f"cpu ({provider} could not start: {str(exc).splitlines()[0][:160]})"
            try:
                self.model = og.Model(self._config(folder, "cpu"))
            except Exception as cpu_exc:
                raise EngineError(f"onnxruntime-genai could not load {folder}: {cpu_exc}") from cpu_exc
        self.context_length = context_length
        self.last_timings = Timings()
        self._generator: Any = None
        self._tokens: list[int] = []
        self._lock = threading.Lock()

    def _config(self, folder: Path, provider: str) -> Any:
        config = self.og.Config(str(folder))
        config.clear_providers()
        if PROVIDERS[provider]:
            config.append_provider(PROVIDERS[provider])
        return config

    def _fresh(self) -> Any:
        params = self.og.GeneratorParams(self.model)
        params.set_search_options(max_length=self.context_length)
        self._tokens = []
        return self.og.Generator(self.model, params)

    def _prefill(self, prompt: Sequence[int]) -> int:
        """Make the generator hold `prompt` and its last logits; return the tokens reused."""
        prefix = reusable_prefix(self._tokens, prompt)
        if self._generator is not None and prefix > 0:
            try:
                self._generator.rewind_to(prefix)
                del self._tokens[prefix:]
            except Exception as exc:
                # The sliding-window layers keep only the last window of positions:
                # once the start of the new turn has left them, rewinding is refused.
                log.debug("cannot rewind to %d (%s); evaluating the prompt afresh", prefix, exc)
                prefix = 0
        if self._generator is None or prefix == 0:
            self._generator, prefix = self._fresh(), 0
        self._append(prompt[prefix:])
        return prefix

    def _append(self, tokens: Sequence[int]) -> None:
        self._generator.append_tokens(np.asarray(tokens, dtype=np.int32))
        self._tokens.extend(int(t) for t in tokens)

    def generate(
        self,
        prompt: Sequence[int],
        sampling: Sampling,
        stop: Collection[int] = (),
        cancel: threading.Event | None = None,
        logits_processor: LogitsProcessor | None = None,
        timings: Timings | None = None,
    ) -> Iterator[int]:
        room = check_prompt(prompt, self.context_length)
        with self._lock:  # one sequence at a time: the generator holds one KV cache
            timings = timings if timings is not None else Timings()
            timings.prompt_tokens = len(prompt)
            timings.stop_reason = "length"
            self.last_timings = timings
            rng = np.random.default_rng(sampling.seed)
            start = time.perf_counter()
            try:
                timings.cached_tokens = self._prefill(prompt)
            except Exception as exc:
                self._generator = None
                raise EngineError(f"onnxruntime-genai failed: {exc}") from exc
            budget = min(sampling.max_tokens, room)
            while timings.generated_tokens < budget:
                logits = np.asarray(self._generator.get_logits())[0, -1]
                if logits_processor is not None:
                    logits = logits_processor(np.asarray(self._tokens, dtype=np.intc), logits.copy())
                token = sample(logits, sampling, rng)
                timings.token(time.perf_counter() - start)
                yield token
                if token in stop:
                    timings.stop_reason = "stop"
                    break
                if cancel is not None and cancel.is_set():
                    timings.stop_reason = "cancel"
                    break
                if timings.generated_tokens < budget:
                    sampled(logits_processor, token)
                    self._append([token])

    def close(self) -> None:
        self._generator = None
        self.model = None
