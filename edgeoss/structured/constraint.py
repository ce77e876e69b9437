"""The logits processor that enforces a Shape, for both engines.

It is called before each sampled token with the sequence so far (prompt and
generated ids) and the next token's logits. The first call of a generation
(or of a tool loop's next round: the sequence grew by more than the one
sampled token) starts the grammar afresh, since every round begins right
after `<|start|>assistant`; each later call first feeds the token sampled
last, then masks every token the grammar does not allow next."""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from collections.abc import Callable

import llguidance
import llguidance.numpy
import numpy as np

from edgeoss import spec
from edgeoss.structured import grammar, vocab

log = logging.getLogger(__name__)


class Compiled:
    """A grammar checked and compiled once per request; each round copies it."""

    def __init__(self, shape: grammar.Shape) -> None:
        self.shape = shape
        self.text = llguidance.LLMatcher.grammar_from_lark(grammar.lark(shape))
        matcher = llguidance.LLMatcher(vocab.tokenizer(), self.text, log_level=0)
        if matcher.is_error():
            raise grammar.ShapeError(_said(matcher.get_error()))
        self._template = matcher

    def matcher(self) -> llguidance.LLMatcher:
        return self._template.deep_copy()


def _said(error: str) -> str:
    """llguidance's message, its first line and without the grammar listing."""
    first = error.strip().splitlines()[0] if error.strip() else "the schema cannot be enforced"
    return first[:300]


NEG = np.float32(-np.inf)
_WORKERS = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="edgeoss-constraint")
"""Where the next step's mask is computed while the engine decodes (two: a batch of sequences)."""
LANES = np.arange(32)


def apply_mask(logits: np.ndarray, bitmask: bytes | np.ndarray) -> np.ndarray:
    """`logits` with every token the bitmask (llguidance's: bit i of 32-bit word i // 32 is
    token i) refuses at -inf. Two ways, by what the mask looks like, since a full pass over
    201,088 logits is most of the constraint's cost: inside JSON a few hundred tokens are
    allowed, so they are kept aside, the row filled with -inf and they put back; in free
    text nearly all are, so only the words with a refused bit are touched. In place, always."""
    n = len(logits)
    words = np.frombuffer(bitmask, dtype=np.uint32)[: (n + 31) // 32]  # bytes, or llguidance's int32 row
    some = np.flatnonzero(words)
    if len(some) * 2 < len(words):
        bits = np.unpackbits(words[some].view(np.uint8), bitorder="little").reshape(-1, 32).view(bool)
        allowed = (some[:, None] * 32 + LANES)[bits]
        allowed = allowed[allowed < n]
        kept = logits[allowed]
        logits.fill(NEG)  # in place: a fresh 800 KB array per token costs its page faults every time
        logits[allowed] = kept
        return logits
    full = n // 32
    rows = logits[: full * 32].reshape(full, 32)
    head = words[:full]
    rows[head == 0] = NEG
    partial = np.flatnonzero((head != 0) & (head != 0xFFFFFFFF))
    if len(partial):
        bits = np.unpackbits(head[partial].view(np.uint8), bitorder="little").reshape(-1, 32).view(bool)
        block = rows[partial]
        block[~bits] = NEG
        rows[partial] = block
    if n % 32:
        tail = np.unpackbits(words[full:].view(np.uint8), bitorder="little")[: n % 32].view(bool)
        logits[full * 32 :][~tail] = NEG
    return logits


class Constraint:
    """LogitsProcessor: (ids so far, logits) -> logits with the disallowed tokens at -inf."""

    def __init__(self, compiled: Compiled) -> None:
        self.compiled = compiled
        self._matcher: llguidance.LLMatcher | None = None
        self._seen = -1
        self.broken = ""  # why enforcement stopped, if it did (a token the grammar refused)
        self._lock = threading.Lock()
        self._mask = llguidance.numpy.allocate_token_bitmask(1, spec.VOCAB_SIZE)  # filled in place each step
        self._ahead: concurrent.futures.Future[bool] | None = None  # the next step, prepared (see accept)
        self._ahead_token = -1

    def __call__(self, ids: np.ndarray, logits: np.ndarray) -> np.ndarray:
        return self.enforce(ids, logits, logits)

    def accept(self, token: int) -> None:
        """The engine sampled `token` and is about to compute the next logits: advance the
        grammar and compute the next mask meanwhile, on a worker thread (llguidance works
        outside the GIL, and the engine's decode is native code), so that on a GPU the
        constraint's work hides behind the model's."""
        with self._lock:
            if self._matcher is None or self._ahead is not None:
                return
            self._ahead_token = token
            self._ahead = _WORKERS.submit(self._advance, token)

    def _advance(self, token: int) -> bool:
        """Feed `token` and fill the mask of the step after it; whether the grammar took it."""
        with self._lock:
            assert self._matcher is not None
            took = bool(self._matcher.consume_token(token))
            if took and not (self._matcher.is_error() or self._matcher.is_stopped()):
                llguidance.numpy.fill_next_token_bitmask(self._matcher, self._mask)
            return took

    def enforce(self, ids: np.ndarray, logits: np.ndarray, fallback: np.ndarray) -> np.ndarray:
        """`logits` masked; where they leave nothing the grammar allows (another processor
        forced a token it refuses), `fallback` (the model's own logits) masked instead."""
        ahead, self._ahead = self._ahead, None
        took = ahead.result() if ahead is not None else None  # outside the lock: the worker holds it
        with self._lock:
            n = len(ids)
            prepared = took is not None and n == self._seen + 1 and int(ids[-1]) == self._ahead_token
            if self._matcher is None or n != self._seen + 1 or (took is not None and not prepared):
                self._matcher = self.compiled.matcher()  # a new generation, or the next round
                prepared = False
            elif not (took if prepared else self._matcher.consume_token(int(ids[-1]))) and not self.broken:
                # Only a token sampled outside this mask gets here; the round goes on unconstrained.
                self.broken = _said(self._matcher.get_error())
                log.warning("constraint stopped: %s", self.broken)
            self._seen = n
            if self._matcher.is_error() or self._matcher.is_stopped():
                return logits
            if not prepared:
                llguidance.numpy.fill_next_token_bitmask(self._matcher, self._mask)
            mask = self._mask[0]
            masked = apply_mask(logits, mask)
            if fallback is logits or np.isfinite(masked.max()):
                return masked
            return apply_mask(np.array(fallback, dtype=np.float32), mask)


def composed(
    inner: Callable[[np.ndarray, np.ndarray], np.ndarray], enforce: Constraint
) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """`inner` (another processor: a test's forced script), then the constraint, which falls
    back on the model's own logits where `inner` left nothing it allows. `inner` returns a
    new array and leaves the model's as they were (the forced scripts do)."""

    return _Composed(inner, enforce)


class _Composed:
    def __init__(self, inner: Callable[[np.ndarray, np.ndarray], np.ndarray], enforce: Constraint) -> None:
        self.inner, self.constraint = inner, enforce

    def __call__(self, ids: np.ndarray, logits: np.ndarray) -> np.ndarray:
        out = self.inner(ids, logits)
        if out is logits:  # changed in place: there is nothing of the model's left to fall back on
            return self.constraint.enforce(ids, out, out)
        return self.constraint.enforce(ids, out, logits)

    def accept(self, token: int) -> None:
        self.constraint.accept(token)
