"""Apple Silicon: unified memory, and how much of it Metal may use."""

from __future__ import annotations

from edgeoss.discover.command import command
from edgeoss.discover.hardware import GPU

MIB = 1024 * 1024
GIB = 1024 * MIB

SYSCTL_KEYS = (
    "machdep.cpu.brand_string",
    "hw.memsize",
    "hw.physicalcpu",
    "hw.logicalcpu",
    "hw.optional.AdvSIMD",
    "iogpu.wired_limit_mb",
    "kern.osproductversion",
)


def collect_sysctl() -> str:
    # One key missing (older macOS lacks iogpu.*) must not lose the others.
    lines = []
    for key in SYSCTL_KEYS:
        try:
            lines.append(command(["sysctl", key], timeout=1.0).strip())
        except Exception:
            continue
    return "\n".join(lines)


def parse_sysctl(text: str) -> dict[str, str]:
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            values[key.strip()] = value.strip()
    return values


def default_working_set(total: int) -> int:
    """Metal's default recommendedMaxWorkingSetSize: about two thirds of
    unified memory up to 36 GB, three quarters above (what llama.cpp reports
    on M-series Macs; an estimate where the sysctl limit is not set)."""
    return total * 2 // 3 if total <= 36 * GIB else total * 3 // 4


def apple_gpu(values: dict[str, str]) -> GPU | None:
    brand = values.get("machdep.cpu.brand_string", "")
    if not brand.startswith("Apple"):
        return None  # an Intel Mac: no unified-memory Metal GPU worth planning for
    total = int(values.get("hw.memsize", "0") or 0) or None
    wired = int(values.get("iogpu.wired_limit_mb", "0") or 0)
    working_set = wired * MIB if wired > 0 else (default_working_set(total) if total else None)
    return GPU(
        vendor="apple",
        name=f"{brand} GPU",
        memory_total_bytes=total,
        memory_free_bytes=None,
        unified_memory=True,
        apis=["metal", "webgpu"],
        working_set_bytes=working_set,
    )
