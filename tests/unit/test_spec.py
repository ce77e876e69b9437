from __future__ import annotations

import pytest

from edgeoss import spec


@pytest.mark.parametrize("name", ["gpt-oss-20b", "gpt-oss-120b"])
def test_parameter_counts_match_published_figures(name: str) -> None:
    hp = spec.VARIANTS[name]
    published = spec.PUBLISHED[name]
    assert hp.total_params / 1e9 == pytest.approx(published["total_params_b"], abs=0.01)
    assert hp.active_params / 1e9 == pytest.approx(published["active_params_b"], abs=0.01)


@pytest.mark.parametrize("name", ["gpt-oss-20b", "gpt-oss-120b"])
def test_both_inventories_hold_every_parameter(name: str) -> None:
    hp = spec.VARIANTS[name]

    def elements(t: spec.TensorSpec) -> int:
        if t.name.endswith("_scales"):
            return 0  # one scale per 32 elements counted in *_blocks
        if t.name.endswith("_blocks"):
            return t.numel * 2  # two FP4 values per byte
        return t.numel

    assert sum(elements(t) for t in hp.original_tensors()) == hp.total_params
    assert sum(t.numel for t in hp.gguf_tensors()) == hp.total_params
    names = [t.name for t in hp.gguf_tensors()]
    assert len(names) == len(set(names)) == 3 + 19 * hp.num_layers


def test_expert_tensor_shapes_of_20b() -> None:
    by_name = {t.name: t for t in spec.GPT_OSS_20B.original_tensors()}
    assert by_name["model.layers.0.mlp.experts.gate_up_proj_blocks"].shape == (32, 5760, 90, 16)
    assert by_name["model.layers.0.mlp.experts.gate_up_proj_scales"].shape == (32, 5760, 90)
    assert by_name["model.layers.23.mlp.experts.down_proj_blocks"].shape == (32, 2880, 90, 16)
    assert by_name["model.embed_tokens.weight"].shape == (201088, 2880)
    gguf = {t.name: t for t in spec.GPT_OSS_20B.gguf_tensors()}
    assert gguf["blk.0.ffn_gate_exps.weight"].shape == (32, 2880, 2880)
    assert gguf["blk.0.ffn_gate_exps.weight"].dtype == "MXFP4"
    assert gguf["blk.0.attn_sinks.weight"].shape == (64,)


def test_kv_cache_arithmetic_matches_design_figures() -> None:
    kib, gib = 1024, 1024**3
    hp20, hp120 = spec.GPT_OSS_20B, spec.GPT_OSS_120B
    assert hp20.kv_bytes_per_token_per_layer() == 2 * kib
    assert hp20.kv_bytes_per_token_per_layer() * hp20.num_full_layers == 24 * kib
    assert hp120.kv_bytes_per_token_per_layer() * hp120.num_full_layers == 36 * kib
    window_bytes_20b = hp20.num_sliding_layers * 128 * 2 * kib
    assert hp20.kv_cache_bytes(131072) == 3 * gib + window_bytes_20b
    assert hp120.kv_cache_bytes(131072) == int(4.5 * gib) + hp120.num_sliding_layers * 128 * 2 * kib
    # Below the window, sliding layers hold every token too.
    assert hp20.kv_cache_bytes(100) == 24 * 2 * kib * 100


def test_layers_alternate_sliding_first() -> None:
    assert spec.GPT_OSS_20B.layer_types[:3] == ["sliding_attention", "full_attention", "sliding_attention"]
    assert spec.GPT_OSS_20B.num_sliding_layers == spec.GPT_OSS_20B.num_full_layers == 12


def test_special_token_texts() -> None:
    assert spec.special_token_text(200006) == "<|start|>"
    assert spec.special_token_text(200018) == "<|endofprompt|>"
    assert spec.special_token_text(201087) == "<|reserved_201087|>"
    with pytest.raises(ValueError):
        spec.special_token_text(201088)
    with pytest.raises(ValueError):
        spec.special_token_text(5)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"num_experts": 2}, "experts_per_token"),
        ({"hidden_size": 100}, "multiple of 32"),
        ({"num_layers": 0}, "num_layers"),
        ({"num_kv_heads": 3}, "num_kv_heads"),
    ],
)
def test_invalid_shapes_are_refused(changes: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        spec.GPT_OSS_20B.replace(**changes)


def test_hf_config_matches_published_20b_config() -> None:
    config = spec.GPT_OSS_20B.to_hf_config()
    assert config["architectures"] == ["GptOssForCausalLM"]
    assert config["quantization_config"] == {
        "modules_to_not_convert": [
            "model.layers.*.self_attn",
            "model.layers.*.mlp.router",
            "model.embed_tokens",
            "lm_head",
        ],
        "quant_method": "mxfp4",
    }
    assert config["num_local_experts"] == 32 and config["num_hidden_layers"] == 24
    assert config["rope_scaling"] == {
        "beta_fast": 32.0,
        "beta_slow": 1.0,
        "factor": 32.0,
        "original_max_position_embeddings": 4096,
        "rope_type": "yarn",
        "truncate": False,
    }
    assert config["vocab_size"] == 201088 and config["eos_token_id"] == 200002
