"""NVIDIA GPUs: NVML (nvidia-ml-py) first, nvidia-smi when NVML is missing."""

from __future__ import annotations

import re
from typing import Any

from edgeoss.discover.command import command
from edgeoss.discover.hardware import GPU
from edgeoss.errors import ProbeFailed

MIB = 1024 * 1024

SMI_QUERY = "name,memory.total,memory.free,driver_version,compute_cap"


def collect_nvml() -> list[dict[str, Any]]:
    """Raw NVML values for every NVIDIA GPU (the shape the recorded profiles use)."""
    try:
        import pynvml
    except ImportError as exc:
        raise ProbeFailed("nvidia-ml-py is not installed") from exc
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        raise ProbeFailed(f"NVML could not start: {exc}") from exc
    try:
        driver = pynvml.nvmlSystemGetDriverVersion()
        cuda = pynvml.nvmlSystemGetCudaDriverVersion_v2()
        out = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(handle)
            out.append(
                {
                    "name": pynvml.nvmlDeviceGetName(handle),
                    "memory_total": int(memory.total),
                    "memory_free": int(memory.free),
                    "driver": driver,
                    "cuda_driver_version": int(cuda),
                    "compute_capability": [int(major), int(minor)],
                }
            )
        return out
    except pynvml.NVMLError as exc:
        raise ProbeFailed(f"NVML query failed: {exc}") from exc
    finally:
        pynvml.nvmlShutdown()


def parse_nvml(values: list[dict[str, Any]]) -> list[GPU]:
    gpus = []
    for v in values:
        name = v["name"].decode() if isinstance(v["name"], bytes) else str(v["name"])
        cuda = v.get("cuda_driver_version")
        major, minor = v.get("compute_capability") or (None, None)
        gpus.append(
            GPU(
                vendor="nvidia",
                name=name,
                memory_total_bytes=v.get("memory_total"),
                memory_free_bytes=v.get("memory_free"),
                apis=["cuda", "vulkan"],
                driver=v.get("driver"),
                compute_capability=f"{major}.{minor}" if major is not None else None,
                cuda_version=f"{cuda // 1000}.{cuda % 1000 // 10}" if isinstance(cuda, int) else None,
            )
        )
    return gpus


def collect_smi() -> tuple[str, str]:
    """(query CSV, plain nvidia-smi output for the CUDA version)."""
    csv = command(["nvidia-smi", f"--query-gpu={SMI_QUERY}", "--format=csv,noheader,nounits"])
    try:
        banner = command(["nvidia-smi"])
    except ProbeFailed:
        banner = ""
    return csv, banner


def parse_smi(csv: str, banner: str = "") -> list[GPU]:
    cuda = re.search(r"CUDA Version:\s*([\d.]+)", banner)
    gpus = []
    for line in csv.strip().splitlines():
        fields = [f.strip() for f in line.split(",")]
        if len(fields) < 4:
            continue
        name, total, free, driver = fields[:4]
        cc = fields[4] if len(fields) > 4 and fields[4] not in ("[N/A]", "N/A", "") else None

        def mib(text: str) -> int | None:
            return int(float(text) * MIB) if re.fullmatch(r"[\d.]+", text) else None

        gpus.append(
            GPU(
                vendor="nvidia",
                name=name,
                memory_total_bytes=mib(total),
                memory_free_bytes=mib(free),
                apis=["cuda", "vulkan"],
                driver=driver,
                compute_capability=cc,
                cuda_version=cuda.group(1) if cuda else None,
            )
        )
    return gpus


def probe_nvidia(notes: list[str]) -> list[GPU]:
    try:
        return parse_nvml(collect_nvml())
    except ProbeFailed as nvml_error:
        try:
            gpus = parse_smi(*collect_smi())
        except ProbeFailed as smi_error:
            if "not installed" not in str(smi_error):  # a driver is there but does not answer
                notes.append(f"NVIDIA: {nvml_error}; {smi_error}")
            return []
        notes.append(f"NVIDIA: {nvml_error}; used nvidia-smi instead")
        return gpus
