"""A logits processor that makes the real model emit a given token script.

Random weights produce random tokens; to drive the harmony parser through
the real engine, each step's logits are masked so that only the next
scripted id can be sampled. (A test double for the model's choices, not for
the engine: llama.cpp still decodes every token.)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class ForcedScript:
    def __init__(self, script: Sequence[int]) -> None:
        self.script = list(script)
        self.step = 0

    def __call__(self, input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        forced = np.full_like(scores, -np.inf)
        token = self.script[min(self.step, len(self.script) - 1)]
        forced[token] = 0.0
        self.step += 1
        return forced
