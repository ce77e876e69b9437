"""The spec's view of `convert --outtype`: which tensors change type, and the
predicted file sizes (checked to the byte against real conversions in
tests/integration/test_convert_q8_0.py)."""

from __future__ import annotations

import pytest

from edgeoss import spec
from edgeoss.errors import UsageError
from edgeoss.planning import memory
from edgeoss.weights.gguf import convert

LARGE = {"token_embd.weight", "output.weight", "attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_output.weight"}


def _is_large(name: str) -> bool:
    return name in LARGE or name.split(".", 2)[-1] in LARGE


def test_lossless_stays_the_default() -> None:
    hp = spec.GPT_OSS_20B
    assert hp.gguf_tensors() == hp.gguf_tensors("bf16")
    assert hp.gguf_file_bytes() == hp.gguf_file_bytes("bf16")
    assert convert.OUTTYPES[0] == "bf16"
    assert convert.plan_tensors.__defaults__ == ("bf16",)
    assert convert.convert.__kwdefaults__ is not None and convert.convert.__kwdefaults__["outtype"] == "bf16"


@pytest.mark.parametrize("outtype", ["bf16", "f32", "q8_0"])
def test_only_the_large_matrices_change_type(outtype: str) -> None:
    hp = spec.GPT_OSS_20B
    lossless = {t.name: t for t in hp.gguf_tensors("bf16")}
    for t in hp.gguf_tensors(outtype):
        base = lossless[t.name]
        assert t.shape == base.shape
        if _is_large(t.name):
            assert (base.dtype, t.dtype) == ("BF16", spec.GGUF_OUTTYPES[outtype]), t.name
        else:
            assert t.dtype == base.dtype, t.name  # MXFP4 experts, F32 vectors and router


def test_q8_0_is_ggml_orgs_published_size() -> None:
    """ggml-org's gpt-oss GGUFs are MXFP4 experts with Q8_0 matrices (llama.cpp's
    MXFP4_MOE mix); a q8_0 conversion is predicted at their published sizes."""
    for name, figures in spec.PUBLISHED.items():
        predicted = spec.VARIANTS[name].gguf_file_bytes("q8_0") / memory.GIB
        assert predicted == pytest.approx(figures["ggml_org_gguf_gib"], abs=0.02), name


def test_predicted_sizes_order_and_differ_by_the_matrices() -> None:
    for hp in spec.VARIANTS.values():
        sizes = {o: hp.gguf_file_bytes(o) for o in spec.GGUF_OUTTYPES}
        assert sizes["q8_0"] < sizes["bf16"] < sizes["f32"]
        matrices = sum(t.numel for t in hp.gguf_tensors() if _is_large(t.name))
        assert sizes["bf16"] - sizes["q8_0"] == matrices * 30 // 32  # 64 - 34 bytes per block of 32
        assert sizes["f32"] - sizes["bf16"] == matrices * 2
        # The memory model's weights are the same tensor bytes.
        tensor_bytes = sum(t.nbytes for t in hp.gguf_tensors("q8_0"))
        assert memory.Weights.estimate(hp, "Q8_0").total == tensor_bytes


def test_20b_q8_0_saves_about_a_third_of_the_bytes_read_per_token() -> None:
    """What decoding reads per token: the active experts, the attention and
    output matrices (the embedding is one row)."""
    hp = spec.GPT_OSS_20B

    def per_token(outtype: str) -> float:
        total = 0.0
        for t in hp.gguf_tensors(outtype):
            if t.name == "token_embd.weight":
                continue
            share = hp.experts_per_token / hp.num_experts if "_exps." in t.name else 1.0
            total += t.nbytes * share
        return total

    assert 1 - per_token("q8_0") / per_token("bf16") == pytest.approx(0.31, abs=0.02)


def test_unknown_outtype_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown outtype 'q4_0'") as caught:
        spec.GPT_OSS_20B.gguf_tensors("q4_0")
    assert "bf16, f32, q8_0" in (caught.value.hint or "")
