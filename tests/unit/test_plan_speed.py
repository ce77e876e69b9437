"""The expected tokens/s in `edgeoss plan` and `edgeoss doctor` (text and JSON),
and in the planner for GPU placements (planning/speed.py's model)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgeoss import constants
from edgeoss.cli import app
from edgeoss.discover.bandwidth import Bandwidth, MachineBandwidth
from edgeoss.planning import speed
from edgeoss.planning.planner import PLANNED_MATRIX, SPEED_CONTEXT_FILL, Plan, plan
from hardware_profiles import load_profile, report_from_profile

runner = CliRunner()


@pytest.fixture(autouse=True)
def given_bandwidth(monkeypatch: pytest.MonkeyPatch) -> None:
    """20 GB/s stated, so that no test measures this machine."""
    monkeypatch.setenv(constants.ENV_MEMORY_BANDWIDTH, "20")


def expected_rate(the_plan: Plan, cpu: float, gpu: float | None = None, matrix: str = PLANNED_MATRIX) -> float:
    from edgeoss import spec

    step = speed.step_bytes(
        spec.VARIANTS[the_plan.variant],
        matrix=matrix,
        context_fill=min(SPEED_CONTEXT_FILL, the_plan.context_length),
        n_gpu_layers=the_plan.n_gpu_layers,
        n_cpu_moe=the_plan.n_cpu_moe_layers,
    )
    rate = speed.tokens_per_s(step, cpu, gpu)
    assert rate is not None
    return rate


def test_plan_json_gives_tokens_per_s_from_the_bandwidth() -> None:
    result = runner.invoke(app, ["plan", "--json", "--variant", "20b", "--backend", "cpu", "--ctx", "8192"])
    data = json.loads(result.stdout)
    if not data["fits"]:
        pytest.skip("gpt-oss-20b does not fit this machine's RAM")
    the_plan = Plan(**{k: v for k, v in data.items() if k != "rejected"})
    figures = data["speed"]
    assert figures["bandwidth"]["cpu"] == {"bytes_per_s": 20e9, "source": "given", "detail": "EDGEOSS_MEMORY_BANDWIDTH"}
    assert figures["tokens_per_s"] == pytest.approx(expected_rate(the_plan, 20e9), abs=0.01)
    bf16 = figures["matrices"]["bf16"]["tokens_per_s"]
    assert bf16 == pytest.approx(expected_rate(the_plan, 20e9, matrix="bf16"), abs=0.01)
    assert bf16 < figures["tokens_per_s"]  # q8_0 reads 1.14 GB less per token
    assert data["speed_class"] == figures["summary"] and "tok/s" in data["speed_class"]


def test_plan_text_shows_the_number_and_how_it_was_found() -> None:
    result = runner.invoke(app, ["plan", "--variant", "20b", "--backend", "cpu", "--ctx", "8192"])
    if "nothing fits" in result.stdout:
        pytest.skip("gpt-oss-20b does not fit this machine's RAM")
    text = " ".join(result.stdout.split())  # rich wraps long lines
    assert "tok/s at most" in text and "(20 GB/s, from EDGEOSS_MEMORY_BANDWIDTH)" in text
    assert "or bf16 matrices (lossless" in text and "GiB larger" in text
    assert "a few tokens/s" not in text


def test_doctor_saves_the_bandwidth_and_plan_reads_it_back(tmp_path: Path) -> None:
    result = runner.invoke(app, ["doctor", "--json"])
    data = json.loads(result.stdout)
    assert data["memory_bandwidth"]["cpu"]["bytes_per_s"] == 20e9
    assert any(c["label"] == "memory bandwidth" and "20.0 GB/s" in c["detail"] for c in data["checks"])
    saved = tmp_path / "report.json"
    saved.write_text(result.stdout)
    # Planned elsewhere, with another figure stated there: the saved one is used.
    again = runner.invoke(
        app,
        ["plan", "--hardware", str(saved), "--json"],
        env={constants.ENV_MEMORY_BANDWIDTH: "1"},
    )
    assert json.loads(again.stdout)["speed"] == data["plan"]["speed"]


def test_a_saved_report_without_bandwidth_gets_bytes_and_the_reason(tmp_path: Path) -> None:
    saved = tmp_path / "h100.json"
    saved.write_text(json.dumps(report_from_profile(load_profile("server-h100-80gb")).to_dict()))
    data = json.loads(runner.invoke(app, ["plan", "--hardware", str(saved), "--json"]).stdout)
    assert data["speed"]["tokens_per_s"] is None
    assert "GB from GPU memory" in data["speed_class"] and "tokens/s unknown" in data["speed_class"]


def test_gpu_and_cpu_experts_add_their_times() -> None:
    report = report_from_profile(load_profile("workstation-2x-rtx3090"))
    figures = MachineBandwidth(
        Bandwidth(60e9, "measured", "test"), (Bandwidth(936e9, "nvml", "a"), Bandwidth(936e9, "nvml", "b"))
    )
    the_plan = plan(report, bandwidth=figures)
    assert the_plan.placement == "gpu+cpu-experts" and the_plan.n_cpu_moe_layers > 0
    # Two equal GPUs in turn read like one at their bandwidth.
    assert the_plan.speed["tokens_per_s"] == pytest.approx(expected_rate(the_plan, 60e9, 936e9), abs=0.01)
    on_gpu = the_plan.speed["matrices"][PLANNED_MATRIX]["bytes_per_token"]
    assert on_gpu["gpu"] > on_gpu["cpu"] > 0


def test_unequal_gpus_weigh_by_their_share() -> None:
    report = report_from_profile(load_profile("workstation-2x-rtx3090"))
    slow_second = MachineBandwidth(
        Bandwidth(60e9, "measured", "test"), (Bandwidth(936e9, "nvml", "a"), Bandwidth(468e9, "nvml", "b"))
    )
    same = MachineBandwidth(
        Bandwidth(60e9, "measured", "test"), (Bandwidth(936e9, "nvml", "a"), Bandwidth(936e9, "nvml", "b"))
    )
    slower, faster = plan(report, bandwidth=slow_second), plan(report, bandwidth=same)
    shares = [slower.predicted_bytes["gpu0"], slower.predicted_bytes["gpu1"]]
    effective = 1 / (shares[0] / sum(shares) / 936e9 + shares[1] / sum(shares) / 468e9)
    assert slower.speed["bandwidth"]["gpu"]["bytes_per_s"] == pytest.approx(effective)
    assert slower.speed["tokens_per_s"] < faster.speed["tokens_per_s"]


def test_nothing_fits_has_no_speed() -> None:
    the_plan = plan(report_from_profile(load_profile("laptop-8gb-no-gpu")))
    assert not the_plan.fits and the_plan.speed == {} and the_plan.speed_class == "none"
