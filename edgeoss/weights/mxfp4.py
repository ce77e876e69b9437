"""MXFP4 as stored in the original gpt-oss checkpoint.

A block is 32 FP4 (E2M1) values sharing one E8M0 scale. In the checkpoint,
`*_blocks` holds 16 bytes per block (byte i = element 2i in the low nibble,
element 2i+1 in the high nibble) and `*_scales` one byte per block
(value = 2**(scale - 127)).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from edgeoss import spec

FP4_VALUES = np.array(spec.FP4_E2M1_VALUES, dtype=np.float32)

FP4_RMS = float(np.sqrt(np.mean(FP4_VALUES**2)))
"""Root mean square of a uniformly random FP4 code (about 2.93)."""


def dequantize(blocks: npt.NDArray[np.uint8], scales: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """Expand `[..., n_blocks, 16]` blocks and `[..., n_blocks]` scales to
    float32 `[..., n_blocks * 32]`, as OpenAI's reference does."""
    if blocks.shape[:-1] != scales.shape or blocks.shape[-1] != spec.MXFP4_BLOCK_BYTES:
        raise ValueError(f"blocks {blocks.shape} and scales {scales.shape} do not describe MXFP4 blocks")
    low = FP4_VALUES[blocks & 0x0F]
    high = FP4_VALUES[blocks >> 4]
    values = np.stack([low, high], axis=-1).reshape(*blocks.shape[:-1], spec.MXFP4_BLOCK)
    exponent = scales.astype(np.int32) - spec.E8M0_BIAS
    scaled: npt.NDArray[np.float32] = np.ldexp(values, exponent[..., None]).astype(np.float32)
    return scaled.reshape(*blocks.shape[:-2], -1)


def scale_exponent_for(std: float) -> int:
    """The E8M0 byte whose scale makes uniformly random codes have RMS ~= std."""
    return spec.E8M0_BIAS + round(math.log2(std / FP4_RMS))


def to_ggml(blocks: npt.NDArray[np.uint8], scales: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """Repack checkpoint MXFP4 into GGML's block layout, bit for bit.

    GGML's block is {u8 e; u8 qs[16]} with qs[j] = element j (low nibble) |
    element j+16 (high nibble), and e uses the same E8M0 bias as the
    checkpoint's scale byte (GGML's kvalues are doubled and its exponent
    halved, which cancels). Only nibbles move; nothing is requantized.
    """
    if blocks.shape[:-1] != scales.shape or blocks.shape[-1] != spec.MXFP4_BLOCK_BYTES:
        raise ValueError(f"blocks {blocks.shape} and scales {scales.shape} do not describe MXFP4 blocks")
    codes = np.empty((*blocks.shape[:-1], spec.MXFP4_BLOCK), dtype=np.uint8)
    codes[..., 0::2] = blocks & 0x0F
    codes[..., 1::2] = blocks >> 4
    out = np.empty((*blocks.shape[:-1], 1 + spec.MXFP4_BLOCK_BYTES), dtype=np.uint8)
    out[..., 0] = scales
    out[..., 1:] = codes[..., :16] | (codes[..., 16:] << 4)
    return out
