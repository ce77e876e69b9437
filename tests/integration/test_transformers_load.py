"""An independent implementation (transformers' GptOssForCausalLM) accepts the
synthetic checkpoint and reads the MXFP4 experts as edgeoss does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open

from edgeoss import spec
from edgeoss.weights import mxfp4

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def model(tiny_checkpoint: Path) -> object:
    return transformers.GptOssForCausalLM.from_pretrained(str(tiny_checkpoint), dtype=torch.float32)


def test_forward_pass_gives_finite_logits_over_the_vocabulary(model: object) -> None:
    # 200 positions: past the 128-token sliding window, through both layer kinds.
    ids = torch.randint(0, spec.VOCAB_SIZE, (2, 200), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        logits = model(ids).logits  # type: ignore[operator]
    assert logits.shape == (2, 200, spec.VOCAB_SIZE)
    assert torch.isfinite(logits).all()
    std = logits.std().item()
    assert 0.1 < std < 10, f"logits should be O(1), got std {std}"


def test_mxfp4_dequantization_agrees_with_transformers(model: object, tiny_checkpoint: Path) -> None:
    experts = model.model.layers[1].mlp.experts  # type: ignore[attr-defined]
    with safe_open(str(tiny_checkpoint / "model.safetensors"), "np") as f:
        prefix = "model.layers.1.mlp.experts."
        gate_up = mxfp4.dequantize(
            f.get_tensor(prefix + "gate_up_proj_blocks"), f.get_tensor(prefix + "gate_up_proj_scales")
        )
        down = mxfp4.dequantize(f.get_tensor(prefix + "down_proj_blocks"), f.get_tensor(prefix + "down_proj_scales"))
    # transformers keeps [experts, in, out]; the checkpoint is [experts, out, in].
    np.testing.assert_array_equal(experts.gate_up_proj.detach().numpy().transpose(0, 2, 1), gate_up)
    np.testing.assert_array_equal(experts.down_proj.detach().numpy().transpose(0, 2, 1), down)


def test_config_is_read_as_gpt_oss(model: object) -> None:
    config = model.config  # type: ignore[attr-defined]
    assert config.model_type == "gpt_oss"
    assert config.layer_types == ["sliding_attention", "full_attention"]
    assert config.sliding_window == 128 and config.num_local_experts == 8
