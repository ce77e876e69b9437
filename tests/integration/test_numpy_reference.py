"""The NumPy gpt-oss forward pass (numpy_gptoss.py) agrees with transformers'
GptOssForCausalLM to float32 rounding, and the comparison is sharp enough to
catch each classic mistake, so it can serve as ground truth for the GGUF converter."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open

import numpy_gptoss as ng
from edgeoss import spec
from edgeoss.weights import synth

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

# 160 positions: past the 128-token sliding window, so window semantics matter.
PROMPT = np.random.default_rng(2025).integers(0, spec.VOCAB_SIZE, size=160).tolist()

# Max |numpy - transformers| / max |transformers| over all logits. Measured 0.8e-6 to
# 1.0e-6 on the 2-layer checkpoint and 1.1e-6 to 1.9e-6 on 4 to 8 layers (three or four
# prompts each): transformers computes in float32 (eps 1.2e-7; its float32 RoPE angles
# alone are about a third of it), we in float64. 1e-5 leaves 5x headroom, and every
# mistake in BREAKAGES moves the logits by 3e-2 or more, thousands of times the tolerance.
TOLERANCE = 1e-5


@dataclass(frozen=True)
class Reference:
    model: ng.Model
    hf_logits: np.ndarray  # transformers' logits for PROMPT, [T, vocab] float32


def relative_error(ours: np.ndarray, theirs: np.ndarray) -> float:
    return float(np.abs(ours - theirs).max() / np.abs(theirs).max())


def _reference(checkpoint: Path) -> Reference:
    hf = transformers.GptOssForCausalLM.from_pretrained(
        str(checkpoint), dtype=torch.float32, attn_implementation="eager"
    )
    # float32 everywhere (experts dequantized from MXFP4 included), or the tolerance means nothing.
    assert {p.dtype for p in hf.parameters()} == {torch.float32}
    with torch.no_grad():
        logits = hf(torch.tensor([PROMPT])).logits[0].numpy()
    return Reference(ng.load(checkpoint), logits)


@pytest.fixture(scope="module")
def tiny(tiny_checkpoint: Path) -> Reference:
    """2 layers (sliding, full), one safetensors file."""
    return _reference(tiny_checkpoint)


@pytest.fixture(scope="module")
def deep(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    """4 layers, another seed, and shards small enough that the index is used."""
    out = tmp_path_factory.mktemp("ckpt") / "deep"
    hp = synth.hparams_for("tiny", layers=4)
    synth.write_checkpoint(out, synth.plan(hp, seed=5, max_shard_bytes=30_000_000))
    assert (out / "model.safetensors.index.json").exists()
    return _reference(out)


@pytest.mark.parametrize("which", ["tiny", "deep"])
def test_logits_match_transformers(which: str, request: pytest.FixtureRequest) -> None:
    ref: Reference = request.getfixturevalue(which)
    ours = ng.forward(ref.model, PROMPT)
    assert ours.shape == ref.hf_logits.shape == (len(PROMPT), spec.VOCAB_SIZE)
    assert ours.dtype == np.float32
    np.testing.assert_array_equal(ours.argmax(-1), ref.hf_logits.argmax(-1))
    error = relative_error(ours, ref.hf_logits)
    assert error < TOLERANCE, f"max relative error {error:.3g}"


def _with_tensors(model: ng.Model, edit: Callable[[str, np.ndarray], np.ndarray]) -> ng.Model:
    """A copy of the model whose tensors went through edit(name, value)."""
    return ng.Model(model.config, {name: edit(name, value) for name, value in model.tensors.items()})


def _gate_up_swapped(model: ng.Model) -> ng.Model:
    # What reading gate_up's interleave the wrong way round (gate = odd rows) amounts to.
    swap = {".gate.": ".up.", ".up.": ".gate."}

    def edit(name: str, value: np.ndarray) -> np.ndarray:
        for this, other in swap.items():
            if this in name:
                return model.tensors[name.replace(this, other)]
        return value

    return _with_tensors(model, edit)


# Mistakes a converter or runtime could plausibly make, each as (broken model, yarn_round).
BREAKAGES: dict[str, Callable[[ng.Model], tuple[ng.Model, bool]]] = {
    "sliding layers attend to everything": lambda m: (
        ng.with_config(m, layer_types=("full_attention",) * len(m.config.layer_types)),
        False,
    ),
    "window of the token and 126 before it": lambda m: (ng.with_config(m, sliding_window=127), False),
    "window of the token and 128 before it": lambda m: (ng.with_config(m, sliding_window=129), False),
    "attention sinks zeroed": lambda m: (_with_tensors(m, lambda n, v: 0 * v if n.endswith(".sinks") else v), False),
    "gate and up swapped": lambda m: (_gate_up_swapped(m), False),
    "YaRN ramp rounded to whole dims (llama.cpp)": lambda m: (m, True),
}


@pytest.mark.parametrize("breakage", list(BREAKAGES))
def test_each_mistake_fails_the_tolerance(breakage: str, tiny: Reference) -> None:
    broken, yarn_round = BREAKAGES[breakage](tiny.model)
    error = relative_error(ng.forward(broken, PROMPT, yarn_round=yarn_round), tiny.hf_logits)
    assert error > 100 * TOLERANCE, f"{breakage}: max relative error only {error:.3g}"


@pytest.mark.parametrize("truncate", [False, True])
def test_yarn_frequencies_match_transformers(truncate: bool, tiny: Reference, tiny_checkpoint: Path) -> None:
    # transformers' truncate: true rounds the ramp ends as llama.cpp does; our yarn_round mirrors it.
    config = transformers.AutoConfig.from_pretrained(str(tiny_checkpoint))
    config.rope_parameters["truncate"] = truncate
    theirs, their_scaling = transformers.modeling_rope_utils.ROPE_INIT_FUNCTIONS["yarn"](config)
    ours, our_scaling = ng.yarn_inv_freq(tiny.model.config, yarn_round=truncate)
    np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-6)
    assert our_scaling == pytest.approx(their_scaling, rel=1e-12)
    assert our_scaling == pytest.approx(0.1 * np.log(32) + 1)


def test_safetensors_reader_is_exact(tiny_checkpoint: Path) -> None:
    ours = ng.read_safetensors(tiny_checkpoint / "model.safetensors")
    with safe_open(str(tiny_checkpoint / "model.safetensors"), "pt") as f:
        assert set(f.keys()) == set(ours)
        for name in f.keys():  # noqa: SIM118 (safe_open is not a dict)
            theirs = f.get_tensor(name)
            theirs = theirs.numpy() if theirs.dtype == torch.uint8 else theirs.float().numpy()
            assert ours[name].dtype == theirs.dtype and ours[name].shape == theirs.shape, name
            np.testing.assert_array_equal(ours[name], theirs, err_msg=name)


def test_window_semantics_follow_transformers() -> None:
    # transformers' sliding_window_overlay: kv_idx > q_idx - sliding_window, so position q
    # sees itself and the 127 positions before it. Pin the rule we copied.
    from transformers.masking_utils import sliding_window_causal_mask_function

    allowed = sliding_window_causal_mask_function(128)
    q = torch.tensor(200)
    assert allowed(0, 0, q, q - 127) and not allowed(0, 0, q, q - 128)
