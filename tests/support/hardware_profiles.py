"""The recorded machine profiles (tests/support/profiles) and the HardwareReport
the probe's own parsers make of each (see tests/unit/test_planner.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgeoss.discover import apple, cpu, nvidia, windows
from edgeoss.discover.hardware import CPU, Backends, HardwareReport, LlamaCpp

PROFILES = Path(__file__).parent / "profiles"


def load_profile(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((PROFILES / f"{name}.json").read_text())
    return data


def report_from_profile(p: dict[str, Any]) -> HardwareReport:
    sysctl = apple.parse_sysctl(p.get("sysctl", ""))
    if "cpuinfo" in p:
        name, flags = cpu.parse_proc_cpuinfo(p["cpuinfo"])
    else:
        name, flags = p.get("cpu_name") or sysctl.get("machdep.cpu.brand_string", "unknown"), []
    cores = p.get("cores") or [
        int(sysctl.get("hw.physicalcpu", 0)) or None,
        int(sysctl.get("hw.logicalcpu", 0)) or None,
    ]
    gpus = []
    if "nvml" in p:
        gpus += nvidia.parse_nvml(p["nvml"])
    if "nvidia_smi" in p:
        gpus += nvidia.parse_smi(p["nvidia_smi"]["csv"], p["nvidia_smi"]["banner"])
    if "wmi" in p:
        gpus += windows.parse(p["wmi"], p.get("registry", ""))
    apple_gpu = apple.apple_gpu(sysctl)
    if apple_gpu is not None:
        gpus.append(apple_gpu)
    return HardwareReport(
        os=p["os"],
        arch=p["arch"],
        cpu=CPU(name=name, cores_physical=cores[0], cores_logical=cores[1], flags=flags),
        ram_total_bytes=p["ram_total"],
        ram_available_bytes=p["ram_available"],
        disk_free_bytes=p["disk_free"],
        gpus=gpus,
        backends=Backends(llama_cpp=LlamaCpp(**p["llama_cpp"])),
    )
