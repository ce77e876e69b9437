"""The planner on recorded probe outputs of real machine types.

Each profile in tests/support/profiles holds what the probe's collectors return on
such a machine (NVML values, nvidia-smi text, sysctl lines, WMI and registry
JSON, /proc/cpuinfo), turned into a HardwareReport by the probe's own
parsers, and the plan it must lead to. The values are those of the named
hardware (published memory sizes, typical free memory and driver versions);
they were not captured on this project's machines.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from edgeoss import spec
from edgeoss.discover.hardware import HardwareReport, OrtGenAI
from edgeoss.planning import memory
from edgeoss.planning.planner import Preferences, plan
from hardware_profiles import PROFILES, load_profile, report_from_profile

ALL = sorted(path.stem for path in PROFILES.glob("*.json"))


@pytest.mark.parametrize("name", ALL)
def test_profile_gets_its_expected_plan(name: str) -> None:
    profile = load_profile(name)
    expected = profile["expected"]
    result = plan(report_from_profile(profile))
    assert result.fits == expected["fits"], result.reasons
    if not result.fits:
        assert expected["reason"] in result.reasons[0]
        assert result.fixes, "a plan that does not fit must say what would make it fit"
        return
    assert (result.variant, result.backend, result.placement) == (
        expected["variant"],
        expected["backend"],
        expected["placement"],
    ), result.reasons
    if "context" in expected:
        assert result.context_length == expected["context"]
    if "rejected" in expected:
        assert any(expected["rejected"] == r.backend for r in result.rejected)
    for device, predicted in result.predicted_bytes.items():
        assert predicted <= result.budget_bytes[device], device
    assert result.reasons and result.speed_class


def test_report_json_round_trip() -> None:
    report = report_from_profile(load_profile("workstation-2x-rtx3090"))
    again = HardwareReport.from_dict(json.loads(json.dumps(report.to_dict())))
    assert again == report
    assert [g.name for g in again.gpus] == ["NVIDIA GeForce RTX 3090"] * 2
    assert again.gpus[0].cuda_version == "12.4" and again.gpus[0].compute_capability == "8.6"


def test_parsers_read_the_recorded_outputs() -> None:
    mac = report_from_profile(load_profile("macbook-air-m2-16gb"))
    (gpu,) = mac.gpus
    assert gpu.unified_memory and gpu.apis[0] == "metal"
    assert gpu.working_set_bytes == 16 * memory.GIB * 2 // 3  # the default Metal limit
    win = report_from_profile(load_profile("windows-laptop-radeon-780m"))
    assert win.gpus[0].vendor == "amd" and win.gpus[0].unified_memory and "directml" in win.gpus[0].apis
    h100 = report_from_profile(load_profile("server-h100-80gb"))
    assert h100.gpus[0].cuda_version == "13.0" and h100.gpus[0].compute_capability == "9.0"
    assert h100.cpu.flags[:3] == ["sse4_2", "avx", "avx2"]


def test_raised_metal_limit_is_honoured() -> None:
    profile = load_profile("macbook-air-m2-16gb")
    default = plan(report_from_profile(profile))
    assert default.budget_bytes["gpu0"] < 11 * memory.GIB  # two thirds of 16 GiB
    assert any(w.startswith("tight") for w in default.warnings)
    profile["sysctl"] = profile["sysctl"].replace("iogpu.wired_limit_mb: 0", "iogpu.wired_limit_mb: 14336")
    raised = plan(report_from_profile(profile))
    assert raised.backend == "llama.cpp-metal"
    assert raised.budget_bytes["gpu0"] > 12 * memory.GIB  # now RAM, not Metal, is the limit
    assert raised.n_cpu_moe_layers < default.n_cpu_moe_layers


def test_preferences() -> None:
    report = report_from_profile(load_profile("desktop-rtx4090-24gb"))
    fast = plan(report, Preferences(prefer="speed"))
    assert (fast.variant, fast.placement, fast.context_length) == ("gpt-oss-20b", "gpu", 131072)
    short = plan(report, Preferences(variant="20b", context=8192))
    assert short.context_length == 8192 and short.variant == "gpt-oss-20b"
    cpu_only = plan(report, Preferences(backend="cpu", variant="20b"))
    assert cpu_only.backend == "llama.cpp-cpu" and cpu_only.n_gpu_layers == 0


def test_a_cpu_only_llama_build_leaves_the_gpu_idle_and_says_so() -> None:
    profile = load_profile("desktop-rtx4090-24gb")
    profile["llama_cpp"] = {"available": True, "gpu_offload": False, "devices": ["CPU"]}
    result = plan(report_from_profile(profile), Preferences(variant="20b"))
    assert result.backend == "llama.cpp-cpu"
    assert any("no CUDA" in w for w in result.warnings)


def test_the_memory_model_reproduces_the_published_sizes() -> None:
    for name, figures in spec.PUBLISHED.items():
        weights = memory.Weights.estimate(spec.VARIANTS[name], "Q8_0")
        assert weights.total / memory.GIB == pytest.approx(figures["ggml_org_gguf_gib"], abs=0.02)
    # 20b at 131072 tokens: 3 GiB for the 12 full layers plus the windows of the sliding ones.
    kv = memory.kv_cache_bytes(spec.GPT_OSS_20B, 131072)
    assert kv == 12 * 2048 * 131072 + 12 * 2048 * 768


def test_nothing_fits_gives_numbers_and_a_way_out() -> None:
    result = plan(report_from_profile(load_profile("laptop-8gb-no-gpu")))
    assert not result.fits and result.placement == "none"
    assert "GiB" in result.reasons[1] and "RAM" in result.fixes[0]
    assert {r.variant for r in result.rejected} == {"gpt-oss-20b", "gpt-oss-120b"}


# --- onnxruntime-genai in the plan -------------------------------------------------------


def with_ort(profile: dict[str, Any], *providers: str) -> HardwareReport:
    report = report_from_profile(profile)
    report.backends.ort_genai = OrtGenAI(available=True, version="0.18.0", providers=list(providers))
    return report


def test_cuda_that_only_onnxruntime_genai_has_is_planned_with_it() -> None:
    profile = load_profile("desktop-rtx4090-24gb")
    profile["llama_cpp"] = {"available": True, "gpu_offload": False, "devices": ["CPU"]}
    result = plan(with_ort(profile, "cuda", "cpu"))
    # 120b has no published ONNX build, so the GPU runs 20b through onnxruntime-genai.
    assert (result.variant, result.backend, result.placement) == ("gpt-oss-20b", "ort-genai-cuda", "gpu")
    assert result.artifact["format"] == "onnx-cuda" and result.artifact["repo"] == "onnxruntime/gpt-oss-20b-onnx"
    assert any("this llama-cpp-python build does not" in r for r in result.reasons)
    assert any(r.backend == "ort-genai-cuda" and "no ONNX build of gpt-oss-120b" in r.why for r in result.rejected)
    assert any("estimates" in w for w in result.warnings)
    for device, predicted in result.predicted_bytes.items():
        assert predicted <= result.budget_bytes[device]


def test_llama_cpp_stays_first_where_it_can_use_the_gpu() -> None:
    result = plan(with_ort(load_profile("desktop-rtx4090-24gb"), "cuda", "cpu"))
    assert result.backend == "llama.cpp-cuda" and result.variant == "gpt-oss-120b"


def test_without_llama_cpp_the_cpu_runs_onnxruntime_genai() -> None:
    profile = load_profile("windows-laptop-radeon-780m")
    profile["llama_cpp"] = {"available": False}
    result = plan(with_ort(profile, "cpu"))
    assert (result.backend, result.artifact["format"]) == ("ort-genai-cpu", "onnx-cpu")
    assert any("llama-cpp-python is not installed" in r for r in result.reasons)


def test_an_installed_llama_cpp_keeps_the_cpu() -> None:
    result = plan(with_ort(load_profile("windows-laptop-radeon-780m"), "cpu"))
    assert result.backend == "llama.cpp-cpu"


def test_webgpu_drives_a_gpu_llama_cpp_cannot() -> None:
    result = plan(with_ort(load_profile("windows-laptop-radeon-780m"), "webgpu", "cpu"))
    assert (result.backend, result.artifact["format"], result.placement) == ("ort-genai-webgpu", "onnx-webgpu", "gpu")


def test_directml_only_once_a_directml_model_has_loaded_here() -> None:
    report = with_ort(load_profile("windows-laptop-radeon-780m"), "dml", "cpu")
    unverified = plan(report)
    assert unverified.backend == "llama.cpp-cpu"
    assert any(r.backend == "onnx-directml" and "verified to load" in r.why for r in unverified.rejected)
    verified = plan(report, verified_loads=frozenset({"onnx-dml"}))
    assert (verified.backend, verified.artifact["format"]) == ("ort-genai-dml", "onnx-dml")
    assert not any(r.backend == "onnx-directml" for r in verified.rejected)


def test_asking_for_onnxruntime_genai() -> None:
    report = with_ort(load_profile("desktop-rtx4090-24gb"), "cuda", "cpu")
    assert plan(report, Preferences(backend="ort")).backend == "ort-genai-cuda"
    cpu = plan(report, Preferences(backend="ort-cpu"))
    assert (cpu.backend, cpu.n_gpu_layers, cpu.variant) == ("ort-genai-cpu", 0, "gpt-oss-20b")
    assert any("as asked" in r for r in cpu.reasons)
