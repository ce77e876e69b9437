"""engines/draw.py: the NumPy draw the batched engine uses instead of llama.cpp's
chain for plain temperature sampling. It must draw from softmax(logits / T)
exactly, never draw a refused token, repeat under a seed, and leave every
other kind of sampling to llama.cpp."""

from __future__ import annotations

import numpy as np
import pytest

from edgeoss.engines import draw
from edgeoss.engines.base import Sampling

VOCAB = 5 * draw.BLOCK + 123  # several blocks and a ragged last one


def _logits(seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(VOCAB) * 2).astype(np.float32)


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0])
def test_draws_follow_the_softmax(temperature: float) -> None:
    logits = _logits()
    # Put real mass in a few tokens spread over the blocks, the last one included.
    favourites = [3, draw.BLOCK - 1, draw.BLOCK, 3 * draw.BLOCK + 7, VOCAB - 1]
    logits[favourites] = 9.0
    p = np.exp((logits - logits.max()) / temperature)
    p /= p.sum()
    drawer = draw.Drawer(VOCAB, Sampling(temperature=temperature, seed=5))
    n = 40_000
    counts = np.bincount([drawer.draw(logits) for _ in range(n)], minlength=VOCAB)
    for token in favourites:
        expected = p[token] * n
        assert abs(counts[token] - expected) < 5 * np.sqrt(expected) + 5, (token, counts[token], expected)
    rest = np.setdiff1d(np.arange(VOCAB), favourites)
    assert abs(counts[rest].sum() - p[rest].sum() * n) < 5 * np.sqrt(p[rest].sum() * n) + 5


def test_refused_tokens_are_never_drawn() -> None:
    logits = _logits(1)
    allowed = np.array([0, draw.BLOCK * 2 + 5, VOCAB - 1])
    refused = np.full(VOCAB, -np.inf, dtype=np.float32)
    refused[allowed] = logits[allowed]
    drawer = draw.Drawer(VOCAB, Sampling(temperature=1.0))
    assert {drawer.draw(refused) for _ in range(2000)} == set(allowed.tolist())
    one = np.full(VOCAB, -np.inf, dtype=np.float32)
    one[VOCAB - 1] = 0.0
    assert {drawer.draw(one) for _ in range(200)} == {VOCAB - 1}


def test_greedy_is_the_first_best_token_and_the_input_is_left_alone() -> None:
    logits = _logits(2)
    logits[[17, 4000]] = 50.0
    before = logits.copy()
    assert draw.Drawer(VOCAB, Sampling(temperature=0.0)).draw(logits) == 17
    draw.Drawer(VOCAB, Sampling(temperature=0.7)).draw(logits)
    assert np.array_equal(logits, before)


def test_a_seed_repeats_and_no_seed_varies() -> None:
    logits = _logits(3)
    seeded = [draw.Drawer(VOCAB, Sampling(seed=42)) for _ in range(2)]
    assert [seeded[0].draw(logits) for _ in range(50)] == [seeded[1].draw(logits) for _ in range(50)]
    free = [draw.Drawer(VOCAB, Sampling()) for _ in range(2)]
    assert [free[0].draw(logits) for _ in range(50)] != [free[1].draw(logits) for _ in range(50)]


def test_damaged_logits_give_a_token_not_a_crash() -> None:
    drawer = draw.Drawer(VOCAB, Sampling())
    assert drawer.draw(np.full(VOCAB, np.nan, dtype=np.float32)) == 0
    assert drawer.draw(np.full(VOCAB, -np.inf, dtype=np.float32)) in range(VOCAB)


def test_only_plain_sampling_is_drawn_here() -> None:
    assert draw.plain(Sampling())
    assert draw.plain(Sampling(temperature=0.0, top_k=40))  # greedy ignores truncation
    assert not draw.plain(Sampling(top_k=40))
    assert not draw.plain(Sampling(top_p=0.9))
    assert not draw.plain(Sampling(min_p=0.05))
    assert not draw.plain(Sampling(repeat_penalty=1.1))
    assert not draw.plain(Sampling(temperature=0.0, presence_penalty=0.5))
