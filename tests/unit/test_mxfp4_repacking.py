"""MXFP4 repacking from the checkpoint's layout to GGML's, on random blocks (the
whole conversion: tests/integration/test_convert.py)."""

from __future__ import annotations

import numpy as np

from edgeoss.weights import mxfp4


def test_mxfp4_repacking_moves_nibbles_only() -> None:
    """Every nibble and scale byte of the checkpoint reappears unchanged in
    the GGML blocks: unpacking GGML's layout gives the original bytes back."""
    rng = np.random.default_rng(1)
    blocks = rng.integers(0, 256, (3, 5, 16), dtype=np.uint8)
    scales = rng.integers(100, 140, (3, 5), dtype=np.uint8)
    ggml = mxfp4.to_ggml(blocks, scales)
    assert ggml.shape == (3, 5, 17)
    np.testing.assert_array_equal(ggml[..., 0], scales)
    codes = np.concatenate([ggml[..., 1:] & 0x0F, ggml[..., 1:] >> 4], axis=-1)  # elements 0..31
    np.testing.assert_array_equal(codes[..., 0::2] | (codes[..., 1::2] << 4), blocks)
