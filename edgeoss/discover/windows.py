"""Windows display adapters (for DirectML and WebGPU), from WMI and the registry.

Win32_VideoController.AdapterRAM is a 32-bit field (it tops out at 4 GiB), so
dedicated memory comes from the display class's registry key
HardwareInformation.qwMemorySize where present.
"""

from __future__ import annotations

import json
from typing import Any

from edgeoss.discover.command import command
from edgeoss.discover.hardware import GPU

WMI_SCRIPT = (
    "Get-CimInstance Win32_VideoController | "
    "Select-Object Name,AdapterCompatibility,AdapterRAM,DriverVersion | ConvertTo-Json -Compress"
)
REGISTRY_SCRIPT = (
    "Get-ItemProperty 'HKLM:\\SYSTEM\\CurrentControlSet\\Control\\Class\\"
    "{4d36e968-e325-11ce-bfc1-08002be10318}\\0*' -ErrorAction SilentlyContinue | "
    "Select-Object DriverDesc,'HardwareInformation.qwMemorySize' | ConvertTo-Json -Compress"
)


def collect() -> tuple[str, str]:
    wmi = command(["powershell", "-NoProfile", "-Command", WMI_SCRIPT], timeout=5.0)
    try:
        registry = command(["powershell", "-NoProfile", "-Command", REGISTRY_SCRIPT], timeout=5.0)
    except Exception:
        registry = ""
    return wmi, registry


def _as_list(text: str) -> list[dict[str, Any]]:
    if not text.strip():
        return []
    data = json.loads(text)
    return data if isinstance(data, list) else [data]


def vendor_of(name: str, compatibility: str = "") -> str:
    text = f"{name} {compatibility}".lower()
    for key, vendor in (
        ("nvidia", "nvidia"),
        ("amd", "amd"),
        ("advanced micro", "amd"),
        ("radeon", "amd"),
        ("intel", "intel"),
        ("qualcomm", "qualcomm"),
    ):
        if key in text:
            return vendor
    return "other"


def parse(wmi: str, registry: str = "") -> list[GPU]:
    dedicated = {}
    for entry in _as_list(registry):
        size = entry.get("HardwareInformation.qwMemorySize")
        if entry.get("DriverDesc") and isinstance(size, int):
            dedicated[entry["DriverDesc"]] = size
    gpus = []
    for entry in _as_list(wmi):
        name = str(entry.get("Name") or "unknown adapter")
        if "basic display" in name.lower() or "remote" in name.lower():
            continue  # Microsoft Basic Display Adapter, RDP: no compute
        vendor = vendor_of(name, str(entry.get("AdapterCompatibility") or ""))
        memory = dedicated.get(name, entry.get("AdapterRAM"))
        # Integrated GPUs (Intel, AMD APUs) have little dedicated memory and borrow system RAM.
        integrated = vendor == "intel" or (vendor == "amd" and isinstance(memory, int) and memory <= 2 * 1024**3)
        gpus.append(
            GPU(
                vendor=vendor,
                name=name,
                memory_total_bytes=memory if isinstance(memory, int) else None,
                unified_memory=integrated,
                apis=["directml", "webgpu", "vulkan"] + (["cuda"] if vendor == "nvidia" else []),
                driver=entry.get("DriverVersion"),
            )
        )
    return gpus
