"""Drawing the next token from a row of logits, in NumPy, fast.

What most requests ask for (temperature over the whole vocabulary, or
greedy) costs llama.cpp's sampler chain 1.5 to 3 ms a token on a CPU core:
it copies 201,088 logits into candidate records, then normalises and walks
them. On a GPU that is most of a decode step. The same draw in NumPy is a
scaled exp, a sum per block of 2,048 logits, and a cumulative sum inside one
block: about 0.3 ms, and NumPy releases the GIL for it, so the slots of a
batch draw side by side.

The draw is exact: token i is chosen with probability softmax(logits / T)[i]
(inverse CDF on a uniform number, in float64 sums). Anything else a request
asks for (top-k, top-p, min-p, repetition penalties) goes to llama.cpp's
chain, which implements them (plain() says which is which).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from edgeoss.engines.base import Sampling

BLOCK = 2048


def plain(sampling: Sampling) -> bool:
    """Whether Drawer implements `sampling` exactly: greedy, or a temperature
    over the whole vocabulary, without repetition penalties."""
    if (sampling.repeat_penalty, sampling.frequency_penalty, sampling.presence_penalty) != (1.0, 0.0, 0.0):
        return False
    return sampling.temperature <= 0 or (sampling.top_k <= 0 and sampling.top_p >= 1.0 and sampling.min_p <= 0.0)


class Drawer:
    """One generation's draws: its temperature and its own random stream
    (seeded when the request gives a seed, so a seeded request repeats)."""

    def __init__(self, n_vocab: int, sampling: Sampling) -> None:
        self.greedy = sampling.temperature <= 0
        self.scale = np.float32(1.0 / sampling.temperature) if not self.greedy else np.float32(1.0)
        self.rng = np.random.default_rng(sampling.seed)
        self._work = np.empty(n_vocab, dtype=np.float32)
        self._starts = np.arange(0, n_vocab, BLOCK)

    def draw(self, logits: npt.NDArray[np.float32]) -> int:
        if self.greedy:
            return int(np.argmax(logits))
        x = self._work
        np.multiply(logits, self.scale, out=x)
        top = x.max()
        if not np.isfinite(top):  # every token refused, or damaged logits: the best one left
            return int(np.nanargmax(logits)) if not np.isnan(logits).all() else 0
        np.subtract(x, top, out=x)
        np.exp(x, out=x)  # in (0, 1]; a refused token (-inf) becomes exactly 0
        blocks = np.cumsum(np.add.reduceat(x, self._starts, dtype=np.float64))
        target = self.rng.random() * blocks[-1]
        b = min(int(np.searchsorted(blocks, target, side="right")), len(blocks) - 1)
        lo = int(self._starts[b])
        inside = np.cumsum(x[lo : lo + BLOCK], dtype=np.float64)
        i = int(np.searchsorted(inside, target - (blocks[b - 1] if b else 0.0), side="right"))
        if i >= len(inside) or x[lo + i] == 0.0:
            # Only a float64 rounding at the block's end lands here: the block's last possible token.
            i = int(np.flatnonzero(x[lo : lo + BLOCK])[-1])
        return lo + i
