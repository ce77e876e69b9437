"""The o200k_harmony vocabulary as llguidance's tokenizer, built once per process
from the packaged o200k_base ranks and harmony's special tokens (about 1.5 s:
build it off the event loop)."""

from __future__ import annotations

import functools
import threading

import llguidance

from edgeoss import spec
from edgeoss.harmony.tokenizer import mergeable_ranks

_lock = threading.Lock()


@functools.cache
def _build() -> llguidance.LLTokenizer:
    specials = {spec.special_token_text(i): i for i in range(spec.BPE_RANKS, spec.VOCAB_SIZE)}
    built: llguidance.LLTokenizer = llguidance.LLTokenizer.from_tiktoken(  # type: ignore[attr-defined]
        encoder=mergeable_ranks(),
        special_tokens=specials,
        pattern=spec.O200K_PATTERN,
        eos_token=spec.RETURN,
        n_vocab=spec.VOCAB_SIZE,
    )
    return built


def tokenizer() -> llguidance.LLTokenizer:
    with _lock:  # one build, however many requests ask at once
        return _build()
