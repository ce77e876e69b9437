"""AMD and Intel GPUs on Linux, from sysfs (cheap; no vendor tools needed)."""

from __future__ import annotations

from pathlib import Path

from edgeoss.discover.hardware import GPU

VENDORS = {"0x1002": "amd", "0x8086": "intel"}


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def probe_sysfs(root: Path = Path("/sys/class/drm")) -> list[GPU]:
    gpus: list[GPU] = []
    if not root.is_dir():
        return gpus
    for card in sorted(root.glob("card[0-9]*")):
        if "-" in card.name:
            continue  # connectors (card0-DP-1) are not devices
        device = card / "device"
        try:
            vendor = VENDORS.get((device / "vendor").read_text().strip())
        except OSError:
            continue
        if vendor is None:
            continue  # NVIDIA comes from NVML; others are not planned for

        total, used = _read_int(device / "mem_info_vram_total"), _read_int(device / "mem_info_vram_used")
        product = device / "product_name"
        name = product.read_text().strip() if product.is_file() else f"{vendor.upper()} GPU ({card.name})"
        apis = ["vulkan"] + (["rocm"] if vendor == "amd" and Path("/dev/kfd").exists() else [])
        gpus.append(
            GPU(
                vendor=vendor,
                name=name,
                memory_total_bytes=total,
                memory_free_bytes=total - used if total is not None and used is not None else None,
                unified_memory=vendor == "intel" or (total is not None and total <= 2 * 1024**3),
                apis=apis,
            )
        )
    return gpus
