"""probe(): the whole hardware report, each step under a timeout.

A step that fails, hangs or is not permitted leaves its part "unknown" and
adds a note saying why; the probe itself never fails.

Run on its own: python -m edgeoss.discover.probe
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import platform
import sys
from typing import TypeVar

import psutil

from edgeoss import fsutil
from edgeoss.discover import apple, cpu, linux_gpu, nvidia, windows
from edgeoss.discover import installed as backends
from edgeoss.discover.hardware import GPU, Backends, HardwareReport, LlamaCpp, OrtGenAI
from edgeoss.paths import paths

log = logging.getLogger(__name__)
STEP_TIMEOUT_S = 5.0
T = TypeVar("T")


def _get(future: concurrent.futures.Future[T], notes: list[str], what: str, default: T) -> T:
    try:
        return future.result(timeout=STEP_TIMEOUT_S)
    except concurrent.futures.TimeoutError:
        notes.append(f"{what}: no answer within {STEP_TIMEOUT_S:.0f} s")
    except Exception as exc:  # a probe step never takes the report down
        notes.append(f"{what}: {exc}")
        log.debug("probe step %s failed", what, exc_info=True)
    return default


def _nothing() -> list[GPU]:
    return []


def probe(*, onnx: bool = True) -> HardwareReport:
    """The hardware report; `onnx=False` leaves ONNX Runtime GenAI unprobed (a
    command given a GGUF file needs only llama.cpp: its import costs startup time)."""
    notes: list[str] = []
    system = {"Linux": "linux", "Darwin": "macos", "Windows": "windows"}.get(
        platform.system(), platform.system().lower()
    )
    # Threads, not processes: each step waits on a command or a library call.
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=6, thread_name_prefix="probe")
    try:
        sysctl_f = pool.submit(apple.collect_sysctl if system == "macos" else str)
        nvidia_f = pool.submit(nvidia.probe_nvidia, notes)
        windows_f = pool.submit((lambda: windows.parse(*windows.collect())) if system == "windows" else _nothing)
        sysfs_f = pool.submit(linux_gpu.probe_sysfs if system == "linux" else _nothing)
        llama_f = pool.submit(backends.probe_llama_cpp)
        ort_f = pool.submit(backends.probe_ort_genai if onnx else OrtGenAI)

        sysctl = apple.parse_sysctl(_get(sysctl_f, notes, "sysctl", ""))
        memory = psutil.virtual_memory()
        models = paths().models
        report = HardwareReport(
            os=system,
            os_version=sysctl.get("kern.osproductversion") or platform.release(),
            arch=platform.machine().lower().replace("amd64", "x86_64").replace("aarch64", "arm64"),
            cpu=cpu.probe_cpu(sysctl),
            ram_total_bytes=int(memory.total),
            ram_available_bytes=int(memory.available),
            swap_total_bytes=int(psutil.swap_memory().total),
            disk_free_bytes=fsutil.free_bytes(models)[0],
            disk_path=str(models),
            backends=Backends(
                llama_cpp=_get(llama_f, notes, "llama.cpp", LlamaCpp()),
                ort_genai=_get(ort_f, notes, "ONNX Runtime GenAI", OrtGenAI()),
            ),
        )
        gpus = _get(nvidia_f, notes, "NVIDIA", [])
        nvml_found = bool(gpus)
        for gpu in _get(windows_f, notes, "Windows adapters", []) + _get(sysfs_f, notes, "sysfs GPUs", []):
            if gpu.vendor == "nvidia" and nvml_found:
                continue  # NVML described it already, with free memory and compute capability
            gpus.append(gpu)
        apple_gpu = apple.apple_gpu(sysctl)
        if apple_gpu is not None:
            gpus.append(apple_gpu)
        report.gpus = gpus
        if not report.cpu.flags and report.backends.llama_cpp.system_info:
            report.cpu.flags = cpu.parse_llama_system_info(report.backends.llama_cpp.system_info)
        report.notes = notes
        return report
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def main() -> None:
    json.dump(probe().to_dict(), sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
