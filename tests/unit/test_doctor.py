"""The probe's failure modes, `edgeoss doctor` and `edgeoss plan` (doctor verifying an
installed model: tests/integration/test_doctor_models.py)."""

from __future__ import annotations

import json
import os
import socket
import stat
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgeoss.cli import app
from edgeoss.discover import command as run
from edgeoss.discover import nvidia, probe
from edgeoss.discover.hardware import HardwareReport
from edgeoss.planning import doctor
from edgeoss.planning.planner import plan
from hardware_profiles import load_profile, report_from_profile

runner = CliRunner()


def fake_command(folder: Path, name: str, script: str) -> None:
    """A stand-in for a vendor tool on PATH (a test double of nvidia-smi)."""
    path = folder / name
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


@pytest.fixture
def fake_bin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "bin"
    folder.mkdir()
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    # NVML missing: the probe must fall back to nvidia-smi.
    monkeypatch.setattr(nvidia, "collect_nvml", lambda: (_ for _ in ()).throw(run.ProbeFailed("NVML missing")))
    return folder


def test_nvidia_smi_fallback_parses_real_output(fake_bin: Path) -> None:
    fake_command(
        fake_bin,
        "nvidia-smi",
        'case "$1" in --query-gpu=*) echo "NVIDIA GeForce RTX 3060, 12288, 11623, 550.120, 8.6";; '
        '*) echo "| NVIDIA-SMI 550.120  Driver Version: 550.120  CUDA Version: 12.4 |";; esac\n',
    )
    notes: list[str] = []
    (gpu,) = nvidia.probe_nvidia(notes)
    assert gpu.name == "NVIDIA GeForce RTX 3060" and gpu.memory_total_bytes == 12288 * 1024 * 1024
    assert gpu.cuda_version == "12.4" and gpu.compute_capability == "8.6"
    assert notes == ["NVIDIA: NVML missing; used nvidia-smi instead"]


def test_hanging_nvidia_smi_is_cut_short(fake_bin: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_command(fake_bin, "nvidia-smi", "sleep 30\n")
    monkeypatch.setattr(run, "PROBE_TIMEOUT_S", 0.5)
    notes: list[str] = []
    start = time.monotonic()
    assert nvidia.probe_nvidia(notes) == []
    assert time.monotonic() - start < 5
    assert "did not answer" in notes[0]


def test_permission_error_becomes_a_note(fake_bin: Path) -> None:
    fake_command(fake_bin, "nvidia-smi", 'echo "Insufficient Permissions" >&2; exit 4\n')
    notes: list[str] = []
    assert nvidia.probe_nvidia(notes) == []
    assert "Insufficient Permissions" in notes[0]


def test_a_failing_step_leaves_the_rest_of_the_report(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> None:
        raise PermissionError("access denied to /dev/nvidiactl")

    monkeypatch.setattr(probe.backends, "probe_llama_cpp", broken)
    report = probe.probe()
    assert report.ram_total_bytes and report.cpu.cores_logical
    assert not report.backends.llama_cpp.available
    assert any("access denied" in note for note in report.notes)


def test_probe_is_quick_when_warm() -> None:
    probe.probe()
    start = time.monotonic()
    probe.probe()
    assert time.monotonic() - start < 1.0


def test_doctor_json_is_a_report_the_planner_reads(tmp_path: Path) -> None:
    result = runner.invoke(app, ["doctor", "--json"])
    assert result.exit_code in (0, 1), result.output
    data = json.loads(result.stdout)
    for key in ("os", "arch", "cpu", "ram_total_bytes", "ram_available_bytes", "disk_free_bytes", "gpus", "backends"):
        assert key in data
    assert {"plan", "checks"} <= set(data)
    saved = tmp_path / "report.json"
    saved.write_text(result.stdout)
    again = runner.invoke(app, ["plan", "--hardware", str(saved), "--json"])
    assert json.loads(again.stdout)["variant"] == data["plan"]["variant"]


def test_plan_for_a_saved_report_of_another_machine(tmp_path: Path) -> None:
    saved = tmp_path / "h100.json"
    saved.write_text(json.dumps(report_from_profile(load_profile("server-h100-80gb")).to_dict()))
    result = runner.invoke(app, ["plan", "--hardware", str(saved), "--json"])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    for key in (
        "backend",
        "variant",
        "artifact",
        "placement",
        "n_gpu_layers",
        "n_cpu_moe_layers",
        "context_length",
        "predicted_bytes",
        "fits",
        "reasons",
        "rejected",
    ):
        assert key in data
    assert (data["variant"], data["placement"], data["n_gpu_layers"]) == ("gpt-oss-120b", "gpu", 37)
    text = runner.invoke(app, ["plan", "--hardware", str(saved)])
    assert "gpt-oss-120b on llama.cpp-cuda" in text.stdout


def test_plan_that_does_not_fit_exits_non_zero(tmp_path: Path) -> None:
    saved = tmp_path / "small.json"
    saved.write_text(json.dumps(report_from_profile(load_profile("laptop-8gb-no-gpu")).to_dict()))
    result = runner.invoke(app, ["plan", "--hardware", str(saved)])
    assert result.exit_code == 1 and "nothing fits" in result.stdout and "fix:" in result.stdout


def test_plan_bad_input(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert runner.invoke(app, ["plan", "--hardware", str(bad)]).exit_code == 2
    assert runner.invoke(app, ["plan", "--prefer", "cheap"]).exit_code == 2
    assert runner.invoke(app, ["plan", "--variant", "70b"]).exit_code == 2


def test_doctor_fixes_for_a_cpu_only_build_on_an_nvidia_machine() -> None:
    profile = load_profile("desktop-rtx4090-24gb")
    profile["llama_cpp"] = {"available": True, "version": "0.3.36", "gpu_offload": False, "devices": ["CPU"]}
    report = report_from_profile(profile)
    checks = doctor.diagnose(report, plan(report))
    cuda = [c for c in checks if c.label == "CUDA"]
    assert cuda and cuda[0].status == "warn" and "-DGGML_CUDA=on" in (cuda[0].fix or "")


def test_doctor_reports_a_taken_port(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        monkeypatch.setattr(doctor.constants, "DEFAULT_PORT", port)
        report = HardwareReport()
        (check,) = [c for c in doctor.diagnose(report, plan(report)) if c.section == "server"]
        assert check.status == "warn" and "--port" in (check.fix or "")


@pytest.mark.parametrize("supported", [True, False])
def test_doctor_says_whether_experts_really_stay_on_the_cpu(supported: bool) -> None:
    report = report_from_profile(load_profile("desktop-rtx3060-12gb"))
    report.backends.llama_cpp.expert_overrides = supported
    the_plan = plan(report)
    assert the_plan.placement == "gpu+cpu-experts"
    [check] = [c for c in doctor.diagnose(report, the_plan) if c.label == "expert placement"]
    assert check.status == ("pass" if supported else "warn")
    assert f"{the_plan.n_cpu_moe_layers} " in check.detail
    assert (check.fix is None) == supported


def test_hints_and_fixes_keep_their_brackets(capsys: pytest.CaptureFixture[str]) -> None:
    # rich reads "[llama]" as markup: unescaped, "pip install 'edgeoss[llama]'" loses it
    import typer

    from edgeoss.cli.output import reported
    from edgeoss.engines.llamacpp.binding import INSTALL_HINT
    from edgeoss.errors import EngineError

    with pytest.raises(typer.Exit), reported():
        raise EngineError("llama-cpp-python is not installed [sic]", hint=INSTALL_HINT)
    printed = capsys.readouterr().err
    assert "edgeoss[llama]" in printed and "[sic]" in printed
