"""planning/speed.py: the bytes one decode step reads, against sums done by hand
from gpt-oss's shapes (config.json: 2880 wide, 64 query and 8 KV heads of 64,
2880-wide experts, 201088-token vocabulary)."""

from __future__ import annotations

import pytest

from edgeoss import spec
from edgeoss.backends import ORT_GENAI
from edgeoss.discover.bandwidth import Bandwidth
from edgeoss.planning import speed

H = 2880
VOCAB = 201088
Q, KV = 64 * 64, 8 * 64
KV_CELL = 2 * KV * 2  # f16 K and V of one token in one layer

# Per layer, by hand: q, k, v, o weights; their biases, the sinks and both norms in f32.
ATTN_VALUES = Q * H + 2 * KV * H + H * Q
ATTN_F32 = (Q + 2 * KV + H) * 4 + 64 * 4 + 2 * H * 4
# One expert: gate, up (f x h) and down (h x f) in MXFP4, 17 bytes per 32 values; f32 biases.
EXPERT = 3 * H * H * 17 // 32 + 3 * H * 4
OUTPUT_VALUES = VOCAB * H


def router(experts: int) -> int:
    return (experts * H + experts) * 4


def weights_by_hand(layers: int, experts: int, matrix_bytes: float) -> float:
    per_layer = ATTN_VALUES * matrix_bytes + ATTN_F32 + router(experts) + 4 * EXPERT
    return layers * per_layer + OUTPUT_VALUES * matrix_bytes + H * 4 + H * matrix_bytes


def test_gpt_oss_20b_bytes_per_token_by_hand() -> None:
    step = speed.step_bytes(spec.GPT_OSS_20B, matrix="bf16")
    assert step.total == weights_by_hand(24, 32, 2) == 3_714_842_496
    assert step.parts == {
        "embedding": H * 2,
        "output": OUTPUT_VALUES * 2 + H * 4,
        "attention": 24 * (ATTN_VALUES * 2 + ATTN_F32),
        "router": 24 * router(32),
        "experts": 24 * 4 * EXPERT,
        "kv": 0,
    }
    assert (step.cpu, step.gpu) == (step.total, 0)


def test_gpt_oss_120b_bytes_per_token_by_hand() -> None:
    # 128 experts instead of 32: only the router grows; still 4 active experts.
    step = speed.step_bytes(spec.GPT_OSS_120B, matrix="bf16")
    assert step.total == weights_by_hand(36, 128, 2) == 5_032_948_608
    assert step.parts["experts"] == 36 * 4 * EXPERT


@pytest.mark.parametrize(("variant", "published_active_b"), [("gpt-oss-20b", 3.61), ("gpt-oss-120b", 5.13)])
def test_values_read_are_the_active_parameters(variant: str, published_active_b: float) -> None:
    hp = spec.VARIANTS[variant]
    # The same parts as the bytes, counted in values: what OpenAI calls active parameters
    # (3.61 B and 5.13 B) plus the one embedding row.
    expert_values = 3 * H * H + 3 * H
    per_layer = ATTN_VALUES + ATTN_F32 // 4 + router(hp.num_experts) // 4 + 4 * expert_values
    by_hand = hp.num_layers * per_layer + OUTPUT_VALUES + H + H
    assert speed.values_read(hp) == by_hand
    assert abs(by_hand / 1e9 - published_active_b) < 0.01


@pytest.mark.parametrize("hp", [spec.GPT_OSS_20B, spec.GPT_OSS_120B], ids=lambda hp: hp.name)
def test_q8_0_reads_fewer_bytes_by_the_matrices_alone(hp: spec.Hparams) -> None:
    bf16 = speed.step_bytes(hp, matrix="bf16", context_fill=4096)
    q8 = speed.step_bytes(hp, matrix="q8_0", context_fill=4096)
    matrix_values = hp.num_layers * ATTN_VALUES + OUTPUT_VALUES + H  # attention, output, the embedding row
    assert bf16.total - q8.total == pytest.approx(matrix_values * (2 - 34 / 32), abs=2)
    for part in ("experts", "router", "kv"):  # MXFP4, f32 and f16: the same in both
        assert bf16.parts[part] == q8.parts[part]
    if hp is spec.GPT_OSS_20B:
        assert bf16.total - q8.total == pytest.approx(1_140_137_100, abs=2)  # 30% of the step


def test_file_difference_counts_every_matrix_once() -> None:
    # token_embd, output and 24 x attention: 1.80 B values, 0.9375 bytes each fewer.
    assert speed.smaller_file_bytes(spec.GPT_OSS_20B) == (2 * OUTPUT_VALUES + 24 * ATTN_VALUES) * 15 // 16


def test_kv_cache_read_at_a_fill() -> None:
    hp = spec.GPT_OSS_20B
    base = speed.step_bytes(hp).total
    # 12 full-attention layers read every filled cell; 12 sliding layers at most 128.
    assert speed.step_bytes(hp, context_fill=4096).total - base == 12 * 4096 * KV_CELL + 12 * 128 * KV_CELL
    assert speed.step_bytes(hp, context_fill=100).total - base == 24 * 100 * KV_CELL
    full = speed.step_bytes(hp, context_fill=131072).parts["kv"]
    assert full == 12 * 131072 * KV_CELL + 12 * 128 * KV_CELL  # 3.2 GB: as much again as the weights


def test_placement_splits_the_bytes_like_llama_cpp() -> None:
    hp = spec.GPT_OSS_20B
    everything = speed.step_bytes(hp, context_fill=4096)
    on_gpu = speed.step_bytes(hp, context_fill=4096, n_gpu_layers=25)
    assert on_gpu.cpu == H * 2 and on_gpu.gpu == everything.total - H * 2  # the embedding row stays in RAM
    experts_in_ram = speed.step_bytes(hp, n_gpu_layers=25, n_cpu_moe=24)
    assert experts_in_ram.cpu == H * 2 + 24 * 4 * EXPERT
    some = speed.step_bytes(hp, n_gpu_layers=25, n_cpu_moe=10)
    assert some.cpu == H * 2 + 10 * 4 * EXPERT and some.total == everything.total - everything.parts["kv"]
    # n_gpu_layers = 1: only the output layer is offloaded; 3: the output and the last two layers.
    output_only = speed.step_bytes(hp, n_gpu_layers=1)
    assert output_only.gpu == OUTPUT_VALUES * 2 + H * 4
    last_two = speed.step_bytes(hp, context_fill=4096, n_gpu_layers=3)
    layer = ATTN_VALUES * 2 + ATTN_F32 + router(32) + 4 * EXPERT
    # layer 22 slides (128 cells), layer 23 is full attention (4096)
    assert last_two.gpu == OUTPUT_VALUES * 2 + H * 4 + 2 * layer + (128 + 4096) * KV_CELL


def test_tokens_per_s_adds_the_time_on_each_device() -> None:
    step = speed.StepBytes(cpu=2_000_000_000, gpu=6_000_000_000)
    assert speed.tokens_per_s(step, 40e9, 600e9) == pytest.approx(1 / (2 / 40 + 6 / 600))
    assert speed.tokens_per_s(speed.StepBytes(cpu=4_000_000_000, gpu=0), 20e9) == pytest.approx(5.0)
    assert speed.tokens_per_s(step, None, 600e9) is None  # 2 GB from RAM at an unknown rate
    # The embedding row alone in RAM does not need the host's bandwidth.
    assert speed.tokens_per_s(speed.StepBytes(cpu=3060, gpu=3_000_000_000), None, 300e9) == pytest.approx(100, 0.01)


def test_estimate_headline_and_trade() -> None:
    hp = spec.GPT_OSS_20B
    cpu = Bandwidth(30e9, "measured", "test")
    out = speed.estimate(
        hp, speed.Placement(), cpu=cpu, gpu=None, context_fill=4096, full_context=131072, matrix="q8_0"
    )
    q8 = speed.step_bytes(hp, matrix="q8_0", context_fill=4096)
    bf16 = speed.step_bytes(hp, matrix="bf16", context_fill=4096)
    assert out["tokens_per_s"] == pytest.approx(30e9 / q8.total, abs=0.01)
    assert out["matrices"]["bf16"]["tokens_per_s"] == pytest.approx(30e9 / bf16.total, abs=0.01)
    assert out["matrices"]["q8_0"]["tokens_per_s_full_context"] < out["tokens_per_s"]
    assert f"~{30e9 / q8.total:.1f} tok/s" in out["summary"] and "30 GB/s, measured" in out["summary"]
    assert f"~{30e9 / bf16.total:.1f} tok/s" in out["trade"] and "1.6 GiB larger" in out["trade"]
    other_way = speed.estimate(hp, speed.Placement(), cpu=cpu, gpu=None, context_fill=0, full_context=8192)
    assert other_way["matrix"] == "bf16" and "1.6 GiB smaller" in other_way["trade"]


def test_estimate_says_why_tokens_per_s_is_unknown() -> None:
    unknown = Bandwidth(None, "unknown", "not measured for this machine")
    out = speed.estimate(spec.GPT_OSS_20B, speed.Placement(), cpu=unknown, gpu=None, context_fill=0, full_context=4096)
    assert out["tokens_per_s"] is None
    assert "tokens/s unknown" in out["summary"] and "not measured for this machine" in out["summary"]
    assert "3.71 GB from RAM" in out["summary"]


def test_onnx_runtime_plans_get_the_int4_figure_alone() -> None:
    out = speed.estimate(
        spec.GPT_OSS_20B,
        speed.Placement(engine=ORT_GENAI),
        cpu=Bandwidth(20e9, "given", "test"),
        gpu=None,
        context_fill=0,
        full_context=4096,
    )
    assert list(out["matrices"]) == ["int4"] and out["trade"] == ""
    int4 = speed.step_bytes(spec.GPT_OSS_20B, matrix="int4")
    assert out["tokens_per_s"] == pytest.approx(20e9 / int4.total, abs=0.01) and "int4 export" in out["summary"]


def test_unknown_matrix_type_is_refused() -> None:
    with pytest.raises(ValueError, match="q4_k"):
        speed.step_bytes(spec.GPT_OSS_20B, matrix="q4_k")
