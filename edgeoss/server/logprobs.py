"""Log-probabilities of the answer's tokens (`logprobs`, `top_logprobs`), for both engines.

edgeoss owns the logits processors of both engines, so the last processor of
a request that asks for logprobs records the distribution each token was
sampled from: the logits after every other processor (a schema's constraint
included: what could not be sampled has no probability), before the
sampler's temperature, as OpenAI reports them. A token's entry is made from
its step's logits when the reply loop asks for it (the answer's tokens
only), or, if the loop has not asked by the next step, then; a step's logits
are held until its entry is made. `-inf` (a token the constraint refused) is
written as -9999.0, as OpenAI does, since JSON has no infinity.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from edgeoss import spec
from edgeoss.harmony.tokenizer import mergeable_ranks

MAX_TOP = 20
"""The most alternatives a token may list (OpenAI's bound)."""
FLOOR = -9999.0
KEEP = 64
"""Entries made ahead of the reply loop, kept at most (those of reasoning tokens are never asked for)."""

Processor = Callable[[np.ndarray, np.ndarray], np.ndarray]


@functools.cache
def _vocabulary() -> list[bytes]:
    table = [b""] * spec.VOCAB_SIZE
    for piece, rank in mergeable_ranks().items():
        table[rank] = piece
    for token in range(spec.BPE_RANKS, spec.VOCAB_SIZE):
        table[token] = spec.special_token_text(token).encode()
    return table


def token_bytes(token: int) -> bytes:
    return _vocabulary()[token] if 0 <= token < spec.VOCAB_SIZE else b""


def _item(token: int, logprob: float) -> dict[str, Any]:
    raw = token_bytes(token)
    return {"token": raw.decode("utf-8", "replace"), "logprob": logprob, "bytes": list(raw)}


class Recorder:
    """The last logits processor of a request that asks for logprobs."""

    def __init__(self, top: int) -> None:
        self.top = max(0, min(MAX_TOP, top))
        self._lock = threading.Lock()
        self._length = -1  # len(ids) at the last call
        self._step = -1  # this round's step of the held logits
        self._logits: np.ndarray | None = None
        self._lse = 0.0
        self._taken = False  # the held step's entry was made
        self._made: dict[int, dict[str, Any]] = {}

    def __call__(self, ids: np.ndarray, logits: np.ndarray) -> np.ndarray:
        with self._lock:
            n = len(ids)
            if n != self._length + 1 or self._logits is None:
                self._step, self._made = -1, {}  # a new generation, or a tool loop's next round
            elif not self._taken:
                # The reply loop has not asked for the last step yet: make it while its logits are here.
                self._made[self._step] = self._entry(int(ids[-1]))
                self._made.pop(self._step - KEEP, None)
            self._length, self._step, self._taken = n, self._step + 1, False
            self._logits = np.array(logits, dtype=np.float32, copy=True)
            finite = self._logits[np.isfinite(self._logits)]
            peak = float(finite.max()) if finite.size else 0.0
            self._lse = peak + float(np.log(np.exp((finite - peak).astype(np.float64)).sum())) if finite.size else 0.0
        return logits

    def entry(self, step: int, token: int) -> dict[str, Any] | None:
        """The entry of this round's `step`, which sampled `token`; None if it is gone."""
        with self._lock:
            made = self._made.pop(step, None)
            if made is not None:
                return made
            if step == self._step and self._logits is not None and not self._taken:
                self._taken = True
                return self._entry(token)
            return None

    def _entry(self, token: int) -> dict[str, Any]:
        assert self._logits is not None
        logits = self._logits
        out = _item(token, self._logprob(float(logits[token])))
        if self.top:
            best = np.argpartition(logits, -self.top)[-self.top :]
            best = best[np.argsort(-logits[best], kind="stable")]
            out["top_logprobs"] = [_item(int(t), self._logprob(float(logits[t]))) for t in best]
        else:
            out["top_logprobs"] = []
        return out

    def _logprob(self, logit: float) -> float:
        value = logit - self._lse
        return max(FLOOR, round(value, 6)) if np.isfinite(value) else FLOOR


class Recording:
    """A request's processors with the recorder last: what it records is what was sampled from."""

    def __init__(self, inner: Processor | None, recorder: Recorder) -> None:
        self.inner, self.recorder = inner, recorder

    def __call__(self, ids: np.ndarray, logits: np.ndarray) -> np.ndarray:
        return self.recorder(ids, self.inner(ids, logits) if self.inner is not None else logits)

    def accept(self, token: int) -> None:
        accept = getattr(self.inner, "accept", None)
        if accept is not None:
            accept(token)
