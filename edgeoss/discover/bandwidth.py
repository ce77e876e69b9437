"""Memory read bandwidth: the limit of decode speed.

A decode step reads every active weight once and does little arithmetic per
byte, so tokens/s is bounded by bytes per token / bandwidth
(planning/speed.py). This module finds the bandwidth of each place the bytes
can live:

- host memory: measured. A streaming read of a buffer far larger than any
  cache (512 MiB, less when free memory is short), one thread per physical
  core each reducing its own slice (numpy releases the GIL in a reduction,
  so the threads really run at once; one core alone rarely saturates the
  memory controllers), best of up to ten passes. About 0.3 s on the 2-core
  machine; up to 2 s when the buffer's pages are touched for the first time
  (a VM whose host backs guest memory lazily, or page cache to evict).
  Remembered per machine (edgeoss.remembered) so doctor and plan measure
  once. EDGEOSS_MEMORY_BANDWIDTH states a figure instead (and keeps tests
  from measuring). On a shared VM the figure varies from run to run with
  the neighbours (30 to 46 GB/s on the 2-core machine); the best pass is
  kept, as the limit is what the memory can give.
- an NVIDIA GPU: its theoretical peak from NVML: memory bus width x maximum
  memory clock x 2 (NVML reports half the data rate for GDDR and HBM alike:
  an RTX 4090 gives 384 bit x 10501 MHz x 2 = 1008 GB/s, an H100 SXM
  5120 bit x 2619 MHz x 2 = 3352 GB/s, the published figures).
- Apple silicon: the published figure of the chip (the GPU reads unified
  memory faster than the CPU cores can).
- other GPUs on unified memory: the host's figure (same memory); any other
  GPU: unknown, with the reason.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import re
import time
from dataclasses import asdict, dataclass
from typing import Any

import psutil

from edgeoss import constants, remembered
from edgeoss.discover.hardware import GPU, HardwareReport
from edgeoss.discover.load import QUIET_SHARE, OtherLoad

log = logging.getLogger(__name__)

KIND = "memory-bandwidth"
REPORT_KEY = "memory_bandwidth"
"""Where `doctor --json` puts MachineBandwidth.to_dict(), beside the hardware report."""
MIB = 1024 * 1024
GIB = 1024 * MIB

BUFFER_MAX = 512 * MIB
BUFFER_MIN = 64 * MIB
"""The buffer is the smaller of BUFFER_MAX and an eighth of available memory,
never under BUFFER_MIN: 2 to 500 times a CPU's last-level cache. Not more:
allocating 1 GiB took 1.2 s on the 2-core machine when the kernel had to
evict page cache for it."""

PASSES_MIN, PASSES_MAX = 2, 10
PASS_BUDGET_S = 0.5
"""Passes stop after PASSES_MAX or once PASS_BUDGET_S is spent (after at least
PASSES_MIN): a slow machine (512 MiB at 5 GB/s) stays under a second."""

APPLE_GB_S: dict[str, float] = {
    # Apple's published unified-memory bandwidth; where one name covers two
    # bins (M3 Max: 300 or 400 GB/s), the lower.
    "M1": 68.25,
    "M1 Pro": 200,
    "M1 Max": 400,
    "M1 Ultra": 800,
    "M2": 100,
    "M2 Pro": 200,
    "M2 Max": 400,
    "M2 Ultra": 800,
    "M3": 100,
    "M3 Pro": 150,
    "M3 Max": 300,
    "M3 Ultra": 819,
    "M4": 120,
    "M4 Pro": 273,
    "M4 Max": 410,
}


@dataclass(frozen=True)
class Bandwidth:
    """One device's memory read bandwidth, or why it is not known."""

    bytes_per_s: float | None
    source: str  # measured, remembered, given, nvml, published, shared, unknown
    detail: str  # how it was found, or why it is unknown

    def describe(self) -> str:
        if self.bytes_per_s is None:
            return f"unknown ({self.detail})"
        return f"{self.bytes_per_s / 1e9:.1f} GB/s ({self.source}: {self.detail})"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: object) -> Bandwidth | None:
        """A saved Bandwidth, or None for anything that is not one."""
        if not isinstance(data, dict):
            return None
        value, source, detail = data.get("bytes_per_s"), data.get("source"), data.get("detail")
        if not isinstance(source, str) or not isinstance(detail, str):
            return None
        if value is None:
            return cls(None, source, detail)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 1e8 <= value <= 1e14:
            return None
        return cls(float(value), source, detail)


UNMEASURED = Bandwidth(None, "unknown", "not measured for this machine; `edgeoss doctor` on it measures it")


@dataclass(frozen=True)
class MachineBandwidth:
    """Host memory, and each GPU of the hardware report in its order."""

    cpu: Bandwidth
    gpus: tuple[Bandwidth, ...] = ()

    def gpu(self, report: HardwareReport, gpu: GPU) -> Bandwidth:
        """The figure of `gpu`, one of `report.gpus`."""
        for i, candidate in enumerate(report.gpus):
            if candidate is gpu and i < len(self.gpus):
                return self.gpus[i]
        return Bandwidth(None, "unknown", f"{gpu.name} is not in this report")

    def to_dict(self) -> dict[str, Any]:
        return {"cpu": self.cpu.to_dict(), "gpus": [g.to_dict() for g in self.gpus]}

    @classmethod
    def from_dict(cls, data: object) -> MachineBandwidth | None:
        """What `doctor --json` saved under REPORT_KEY, or None."""
        if not isinstance(data, dict):
            return None
        cpu = Bandwidth.from_dict(data.get("cpu"))
        gpus = data.get("gpus")
        if cpu is None or not isinstance(gpus, list) or len(gpus) > 64:
            return None
        parsed = [Bandwidth.from_dict(g) for g in gpus]
        return cls(cpu, tuple(g if g is not None else Bandwidth(None, "unknown", "unreadable") for g in parsed))


# --- host memory --------------------------------------------------------------------


def physical_cores() -> int:
    return psutil.cpu_count(logical=False) or os.cpu_count() or 1


def buffer_bytes(available: int) -> int:
    return max(BUFFER_MIN, min(BUFFER_MAX, available // 8)) // MIB * MIB


def measure(threads: int | None = None, nbytes: int | None = None) -> tuple[float, int, int, int]:
    """(bytes/s, threads, buffer bytes, passes) of a streaming read of host memory."""
    import numpy as np

    threads = max(1, threads or physical_cores())
    nbytes = nbytes or buffer_bytes(int(psutil.virtual_memory().available))
    # Written once (np.ones touches every page), so the passes read real memory, not the zero page.
    buf = np.ones(nbytes // 8, dtype=np.uint64)
    slices = np.array_split(buf, threads)
    best = 0.0
    passes = 0
    spent = 0.0
    with concurrent.futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="bandwidth") as pool:
        # One untimed pass first: starts the threads and warms the TLB.
        list(pool.map(np.bitwise_or.reduce, slices))
        while passes < PASSES_MAX and (passes < PASSES_MIN or spent < PASS_BUDGET_S):
            start = time.perf_counter()
            list(pool.map(np.bitwise_or.reduce, slices))
            elapsed = time.perf_counter() - start
            spent += elapsed
            passes += 1
            best = max(best, buf.nbytes / elapsed)
    return best, threads, int(buf.nbytes), passes


def machine_key(report: HardwareReport | None = None) -> str:
    """What the host figure depends on: the CPU, its cores, the memory fitted."""
    if report is None:
        from edgeoss.discover.cpu import probe_cpu

        cpu, total = probe_cpu(), int(psutil.virtual_memory().total)
    else:
        cpu, total = report.cpu, report.ram_total_bytes or 0
    return f"{cpu.name}|{cpu.cores_physical}|{cpu.cores_logical}|{total // MIB}"


def host_bandwidth(report: HardwareReport | None = None, *, measure_now: bool = True) -> Bandwidth:
    """EDGEOSS_MEMORY_BANDWIDTH, else the remembered figure, else measured now
    (and remembered) unless `measure_now` is False."""
    given = constants.memory_bandwidth()
    if given is not None:
        return Bandwidth(given, "given", constants.ENV_MEMORY_BANDWIDTH)
    key = machine_key(report)
    record = remembered.load(KIND, key)
    value = record.get("bytes_per_s") if record else None
    if isinstance(value, int | float) and not isinstance(value, bool) and 1e8 <= value <= 1e14 and record:
        return Bandwidth(float(value), "remembered", str(record.get("detail", "measured earlier")))
    if not measure_now:
        return UNMEASURED
    try:
        with OtherLoad() as load:
            rate, threads, nbytes, passes = measure()
    except (MemoryError, OSError, ValueError) as exc:  # a machine short of memory: say so, do not fail
        log.debug("memory bandwidth measurement failed", exc_info=True)
        return Bandwidth(None, "unknown", f"the measurement failed: {exc}")
    detail = f"streaming read of {nbytes // MIB} MiB, {threads} threads, best of {passes}"
    if load.share > QUIET_SHARE:
        # Other programs shared the memory bus: a figure for now, measured again next time.
        return Bandwidth(rate, "measured", f"{detail}; other programs used {load.share:.0%} of the CPUs")
    remembered.save(KIND, key, {"bytes_per_s": rate, "detail": detail})
    return Bandwidth(rate, "measured", detail)


# --- GPUs --------------------------------------------------------------------------


def nvml_bandwidths() -> list[tuple[str, Bandwidth]]:
    """(name, theoretical bandwidth) of every NVIDIA GPU NVML sees, in NVML's order."""
    try:
        import pynvml
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return []
    try:
        out = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            raw = pynvml.nvmlDeviceGetName(handle)
            name = raw.decode() if isinstance(raw, bytes) else str(raw)
            try:
                bus = int(pynvml.nvmlDeviceGetMemoryBusWidth(handle))
                clock = int(pynvml.nvmlDeviceGetMaxClockInfo(handle, pynvml.NVML_CLOCK_MEM))
            except (pynvml.NVMLError, AttributeError) as exc:  # AttributeError: an nvidia-ml-py without the call
                out.append((name, Bandwidth(None, "unknown", f"NVML has no memory bus width or clock: {exc}")))
                continue
            out.append((name, nvml_figure(bus, clock)))
        return out
    except pynvml.NVMLError as exc:
        log.debug("NVML bandwidth query failed: %s", exc)
        return []
    finally:
        pynvml.nvmlShutdown()


def nvml_figure(bus_bits: int, max_memory_clock_mhz: int) -> Bandwidth:
    if bus_bits <= 0 or max_memory_clock_mhz <= 0:
        return Bandwidth(None, "unknown", f"NVML reports a {bus_bits}-bit bus at {max_memory_clock_mhz} MHz")
    rate = bus_bits / 8 * max_memory_clock_mhz * 1e6 * 2  # two transfers a clock
    return Bandwidth(rate, "nvml", f"{bus_bits}-bit bus x {max_memory_clock_mhz} MHz x 2")


def apple_figure(gpu: GPU) -> Bandwidth | None:
    match = re.match(r"Apple (M\d+(?: (?:Pro|Max|Ultra))?)\b", gpu.name)
    figure = APPLE_GB_S.get(match.group(1)) if match else None
    if match is None or figure is None:
        return None
    return Bandwidth(figure * 1e9, "published", f"Apple's figure for the {match.group(1)}")


def gpu_figure(gpu: GPU, host: Bandwidth, nvml: dict[str, list[Bandwidth]]) -> Bandwidth:
    """`nvml`: the NVML figures by GPU name, each list consumed in order."""
    if gpu.vendor == "nvidia":
        found = nvml.get(gpu.name)
        if found:
            return found.pop(0)
        return Bandwidth(None, "unknown", "NVML did not report this GPU's memory bus and clock")
    if gpu.vendor == "apple":
        published = apple_figure(gpu)
        if published is not None:
            return published
    if gpu.unified_memory and host.bytes_per_s is not None:
        return Bandwidth(host.bytes_per_s, "shared", "unified memory: the host's figure, a floor for the GPU")
    return Bandwidth(None, "unknown", f"edgeoss cannot read the memory bandwidth of a {gpu.vendor} GPU")


def for_machine(report: HardwareReport, *, measure_now: bool = True) -> MachineBandwidth:
    """Every figure for this machine, whose hardware report `report` is."""
    host = host_bandwidth(report, measure_now=measure_now)
    nvml: dict[str, list[Bandwidth]] = {}
    if any(g.vendor == "nvidia" for g in report.gpus):
        for name, figure in nvml_bandwidths():
            nvml.setdefault(name, []).append(figure)
    return MachineBandwidth(host, tuple(gpu_figure(g, host, nvml) for g in report.gpus))


def for_saved_report(report: HardwareReport, saved: object) -> MachineBandwidth:
    """Figures for another machine's report: what its `doctor --json` saved
    under REPORT_KEY, else the published figures alone."""
    found = MachineBandwidth.from_dict(saved)
    if found is not None and len(found.gpus) == len(report.gpus):
        return found
    cpu = found.cpu if found is not None else UNMEASURED
    return MachineBandwidth(cpu, tuple(gpu_figure(g, cpu, {}) for g in report.gpus))


def main() -> None:
    from edgeoss.discover.probe import probe

    report = probe(onnx=False)
    found = for_machine(report)
    print(f"host memory: {found.cpu.describe()}")
    for gpu, figure in zip(report.gpus, found.gpus, strict=True):
        print(f"{gpu.name}: {figure.describe()}")


if __name__ == "__main__":
    main()
