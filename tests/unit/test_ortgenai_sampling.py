"""The ONNX Runtime GenAI engine's sampling of one token from the logits (no model)."""

from __future__ import annotations

import numpy as np

from edgeoss.engines.base import Sampling
from edgeoss.engines.ortgenai.engine import sample


def test_sampling_respects_top_k_and_min_p() -> None:
    rng = np.random.default_rng(0)
    logits = np.array([5.0, 4.0, 0.0, -1.0, -2.0])
    assert {sample(logits, Sampling(top_k=2), rng) for _ in range(200)} <= {0, 1}
    assert {sample(logits, Sampling(min_p=0.5), rng) for _ in range(200)} <= {0, 1}
    assert sample(logits, Sampling(temperature=0), rng) == 0
    assert {sample(logits, Sampling(top_p=0.5), rng) for _ in range(100)} == {0}
