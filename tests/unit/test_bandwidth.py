"""discover/bandwidth.py: the host figure (given, remembered, measured), the
GPUs' (NVML's bus width and clock, Apple's published figures), and how they
travel in a saved report."""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest

from edgeoss import constants
from edgeoss.discover import bandwidth
from edgeoss.discover.bandwidth import Bandwidth, MachineBandwidth
from edgeoss.discover.hardware import CPU, GPU, HardwareReport

MIB = 1024 * 1024


def report(*gpus: GPU, ram: int = 16 << 30) -> HardwareReport:
    return HardwareReport(cpu=CPU("Test CPU", 8, 16), ram_total_bytes=ram, gpus=list(gpus))


@pytest.fixture
def no_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(constants.ENV_MEMORY_BANDWIDTH, raising=False)


def test_measure_reads_a_real_buffer_in_bounded_passes() -> None:
    rate, threads, nbytes, passes = bandwidth.measure(threads=2, nbytes=64 * MIB)
    assert rate > 0 and threads == 2 and nbytes == 64 * MIB
    assert bandwidth.PASSES_MIN <= passes <= bandwidth.PASSES_MAX


def test_buffer_is_sized_down_when_memory_is_short() -> None:
    assert bandwidth.buffer_bytes(64 << 30) == bandwidth.BUFFER_MAX
    assert bandwidth.buffer_bytes(2 << 30) == 256 * MIB  # an eighth of what is available
    assert bandwidth.buffer_bytes(100 * MIB) == bandwidth.BUFFER_MIN


def test_measured_once_then_remembered_per_machine(monkeypatch: pytest.MonkeyPatch, no_given: None) -> None:
    calls: list[int] = []

    def fake_measure(threads: int | None = None, nbytes: int | None = None) -> tuple[float, int, int, int]:
        calls.append(1)
        return 25e9, 8, 512 * MIB, 5

    monkeypatch.setattr(bandwidth, "measure", fake_measure)
    first = bandwidth.host_bandwidth(report())
    assert (first.bytes_per_s, first.source) == (25e9, "measured") and "8 threads" in first.detail
    again = bandwidth.host_bandwidth(report())
    assert (again.bytes_per_s, again.source, len(calls)) == (25e9, "remembered", 1)
    # More memory fitted is another machine as far as bandwidth goes.
    other = bandwidth.host_bandwidth(report(ram=32 << 30))
    assert other.source == "measured" and len(calls) == 2


def test_given_figure_wins_and_nothing_is_measured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(constants.ENV_MEMORY_BANDWIDTH, "42.5")
    monkeypatch.setattr(bandwidth, "measure", lambda *a, **k: pytest.fail("measured despite the given figure"))
    found = bandwidth.host_bandwidth(report())
    assert (found.bytes_per_s, found.source) == (42.5e9, "given")


@pytest.mark.parametrize("value", ["abc", "0", "-3", "nan", "inf", "1e9", ""])
def test_unusable_given_figures_are_ignored(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(constants.ENV_MEMORY_BANDWIDTH, value)
    assert constants.memory_bandwidth() is None


def test_not_measuring_and_a_failed_measurement_are_unknown(monkeypatch: pytest.MonkeyPatch, no_given: None) -> None:
    assert bandwidth.host_bandwidth(report(), measure_now=False) == bandwidth.UNMEASURED

    def short_of_memory(*args: Any, **kwargs: Any) -> tuple[float, int, int, int]:
        raise MemoryError("no room")

    monkeypatch.setattr(bandwidth, "measure", short_of_memory)
    found = bandwidth.host_bandwidth(report())
    assert found.bytes_per_s is None and "no room" in found.detail


@pytest.mark.parametrize(
    ("bus", "clock", "gb_s"),
    [(384, 10501, 1008.1), (192, 7501, 360.05), (5120, 2619, 3352.3), (512, 14001, 1792.1)],
    ids=["rtx4090", "rtx3060", "h100-sxm", "rtx5090"],
)
def test_nvml_figure_is_the_published_peak(bus: int, clock: int, gb_s: float) -> None:
    found = bandwidth.nvml_figure(bus, clock)
    assert found.bytes_per_s == pytest.approx(gb_s * 1e9, rel=1e-4) and found.source == "nvml"


class _NVMLError(Exception):
    pass


def fake_pynvml(devices: list[tuple[str, int | None, int]]) -> types.ModuleType:
    """A stand-in for nvidia-ml-py: (name, bus width or None for "not supported", memory clock)."""
    module = types.ModuleType("pynvml")
    module.NVMLError = _NVMLError  # type: ignore[attr-defined]
    module.NVML_CLOCK_MEM = 2  # type: ignore[attr-defined]
    module.nvmlInit = lambda: None  # type: ignore[attr-defined]
    module.nvmlShutdown = lambda: None  # type: ignore[attr-defined]
    module.nvmlDeviceGetCount = lambda: len(devices)  # type: ignore[attr-defined]
    module.nvmlDeviceGetHandleByIndex = lambda i: i  # type: ignore[attr-defined]
    module.nvmlDeviceGetName = lambda i: devices[i][0].encode()  # type: ignore[attr-defined]

    def bus_width(i: int) -> int:
        width = devices[i][1]
        if width is None:
            raise _NVMLError("Not Supported")
        return width

    module.nvmlDeviceGetMemoryBusWidth = bus_width  # type: ignore[attr-defined]
    module.nvmlDeviceGetMaxClockInfo = lambda i, kind: devices[i][2] if kind == 2 else 0  # type: ignore[attr-defined]
    return module


def test_for_machine_pairs_nvml_figures_with_the_reported_gpus(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(constants.ENV_MEMORY_BANDWIDTH, "50")
    nvml = fake_pynvml([("NVIDIA GeForce RTX 3090", 384, 9751), ("NVIDIA GeForce RTX 3090", None, 9751)])
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    gpus = [GPU("nvidia", "NVIDIA GeForce RTX 3090"), GPU("nvidia", "NVIDIA GeForce RTX 3090")]
    gpus += [GPU("apple", "Apple M2 Max GPU", unified_memory=True), GPU("amd", "Radeon 780M", unified_memory=True)]
    gpus += [GPU("amd", "Radeon RX 7900 XTX")]
    machine = report(*gpus)
    found = bandwidth.for_machine(machine)
    first, second, apple, integrated, discrete = found.gpus
    assert first.bytes_per_s == pytest.approx(936e9, rel=1e-3)
    assert second.bytes_per_s is None and "Not Supported" in second.detail
    assert (apple.bytes_per_s, apple.source) == (400e9, "published")
    assert (integrated.bytes_per_s, integrated.source) == (50e9, "shared")  # same memory as the CPU
    assert discrete.bytes_per_s is None and "amd" in discrete.detail
    assert found.gpu(machine, gpus[0]) == first
    assert found.gpu(machine, GPU("nvidia", "NVIDIA GeForce RTX 3090")).bytes_per_s is None  # not in the report


def test_apple_figures_by_chip() -> None:
    assert bandwidth.apple_figure(GPU("apple", "Apple M2 GPU")) == Bandwidth(
        100e9, "published", "Apple's figure for the M2"
    )
    assert bandwidth.apple_figure(GPU("apple", "Apple M3 Max GPU")).bytes_per_s == 300e9  # type: ignore[union-attr]
    assert bandwidth.apple_figure(GPU("apple", "Apple M9 GPU")) is None


def test_figures_travel_in_a_saved_report() -> None:
    gpus = (GPU("nvidia", "NVIDIA H100 80GB HBM3"),)
    saved = MachineBandwidth(Bandwidth(80e9, "measured", "x"), (Bandwidth(3352e9, "nvml", "y"),))
    again = bandwidth.for_saved_report(report(*gpus), saved.to_dict())
    assert again == saved
    # Nothing saved: the host is unknown, and GPUs only where a figure is published.
    bare = bandwidth.for_saved_report(report(GPU("apple", "Apple M1 Pro GPU", unified_memory=True)), None)
    assert bare.cpu == bandwidth.UNMEASURED and bare.gpus[0].bytes_per_s == 200e9


@pytest.mark.parametrize(
    "data",
    [
        None,
        [],
        {"cpu": {"bytes_per_s": "fast", "source": "measured", "detail": ""}, "gpus": []},
        {"cpu": {"bytes_per_s": 1e20, "source": "measured", "detail": ""}, "gpus": []},
        {"cpu": {"bytes_per_s": True, "source": "measured", "detail": ""}, "gpus": []},
        {"cpu": {"bytes_per_s": 1e10, "source": "measured", "detail": ""}, "gpus": "none"},
    ],
)
def test_damaged_saved_figures_are_refused(data: object) -> None:
    assert MachineBandwidth.from_dict(data) is None
