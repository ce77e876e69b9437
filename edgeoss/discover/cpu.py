"""CPU model, cores and instruction sets."""

from __future__ import annotations

import platform
import re
from pathlib import Path

import psutil

from edgeoss.discover.hardware import CPU

# Instruction sets that decide which llama.cpp kernels run.
INTERESTING_FLAGS = (
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512bw",
    "avx512_bf16",
    "avx512_vnni",
    "amx_tile",
    "amx_bf16",
    "neon",
    "asimd",
    "sve",
    "dotprod",
    "i8mm",
)


def parse_proc_cpuinfo(text: str) -> tuple[str, list[str]]:
    """(model name, interesting flags) from Linux /proc/cpuinfo."""
    name = "unknown"
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "hardware", "cpu model") and name == "unknown":
            name = value.strip()
        elif key in ("flags", "features"):
            flags.update(value.split())
    if "asimd" in flags:
        flags.add("neon")  # Arm's Advanced SIMD is NEON
    return name, [f for f in INTERESTING_FLAGS if f in flags]


def parse_llama_system_info(text: str) -> list[str]:
    """Flags llama.cpp's build reports as used ("AVX2 = 1 | NEON = 1 | ...")."""
    found = {m.group(1).lower() for m in re.finditer(r"([A-Z0-9_]+) = 1", text)}
    aliases = {"avx512": "avx512f", "avx512_bf16": "avx512_bf16", "amx_int8": "amx_tile"}
    found |= {aliases[f] for f in found if f in aliases}
    return [f for f in INTERESTING_FLAGS if f in found]


def probe_cpu(sysctl: dict[str, str] | None = None) -> CPU:
    name, flags = "unknown", list[str]()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        name, flags = parse_proc_cpuinfo(cpuinfo.read_text(errors="replace"))
    elif sysctl:
        name = sysctl.get("machdep.cpu.brand_string", name)
        if sysctl.get("hw.optional.AdvSIMD") == "1" or platform.machine() == "arm64":
            flags = ["neon"]
    if name == "unknown":
        name = platform.processor() or "unknown"
    return CPU(
        name=name,
        cores_physical=psutil.cpu_count(logical=False),
        cores_logical=psutil.cpu_count(logical=True),
        flags=flags,
    )
