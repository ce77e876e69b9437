"""The hardware report: a plain, JSON-round-trippable description of a machine.

`edgeoss doctor --json` prints it; `edgeoss plan --hardware FILE` reads it
back, so plans for other machines can be reviewed and tested.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgeoss import fsutil
from edgeoss.errors import UsageError

SCHEMA = 1
GPU_APIS = ("cuda", "metal", "directml", "vulkan", "webgpu", "rocm")


@dataclass
class CPU:
    name: str = "unknown"
    cores_physical: int | None = None
    cores_logical: int | None = None
    flags: list[str] = field(default_factory=list)  # avx2, avx512f, neon, ...


@dataclass
class GPU:
    vendor: str  # nvidia, apple, amd, intel, other
    name: str
    memory_total_bytes: int | None = None
    memory_free_bytes: int | None = None
    unified_memory: bool = False
    apis: list[str] = field(default_factory=list)  # from GPU_APIS
    driver: str | None = None
    compute_capability: str | None = None  # NVIDIA, e.g. "8.9"
    cuda_version: str | None = None
    working_set_bytes: int | None = None  # Apple: how much of unified memory Metal may use


@dataclass
class LlamaCpp:
    available: bool = False
    version: str | None = None
    gpu_offload: bool = False
    devices: list[str] = field(default_factory=list)
    system_info: str | None = None
    # whether MoE experts can be kept on the CPU (tensor buffer overrides); None: not probed
    expert_overrides: bool | None = None


@dataclass
class OrtGenAI:
    available: bool = False
    version: str | None = None
    providers: list[str] = field(default_factory=list)


@dataclass
class Backends:
    llama_cpp: LlamaCpp = field(default_factory=LlamaCpp)
    ort_genai: OrtGenAI = field(default_factory=OrtGenAI)


@dataclass
class HardwareReport:
    os: str = "unknown"
    os_version: str | None = None
    arch: str = "unknown"
    cpu: CPU = field(default_factory=CPU)
    ram_total_bytes: int | None = None
    ram_available_bytes: int | None = None
    swap_total_bytes: int | None = None
    disk_free_bytes: int | None = None
    disk_path: str | None = None
    gpus: list[GPU] = field(default_factory=list)
    backends: Backends = field(default_factory=Backends)
    notes: list[str] = field(default_factory=list)  # what could not be probed, and why
    schema: int = SCHEMA

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def load(cls, path: Path) -> HardwareReport:
        """A saved report (`edgeoss doctor --json`); a usage error for anything else."""
        try:
            data = fsutil.read_json(path)
            if not isinstance(data, dict):
                raise ValueError("it is not a JSON object")
            return cls.from_dict(data)
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise UsageError(f"{path} is not a hardware report: {exc}") from exc

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HardwareReport:
        backends = data.get("backends") or {}
        return cls(
            os=data.get("os", "unknown"),
            os_version=data.get("os_version"),
            arch=data.get("arch", "unknown"),
            cpu=CPU(**(data.get("cpu") or {})),
            ram_total_bytes=data.get("ram_total_bytes"),
            ram_available_bytes=data.get("ram_available_bytes"),
            swap_total_bytes=data.get("swap_total_bytes"),
            disk_free_bytes=data.get("disk_free_bytes"),
            disk_path=data.get("disk_path"),
            gpus=[GPU(**g) for g in data.get("gpus") or []],
            backends=Backends(
                llama_cpp=LlamaCpp(**(backends.get("llama_cpp") or {})),
                ort_genai=OrtGenAI(**(backends.get("ort_genai") or {})),
            ),
            notes=list(data.get("notes") or []),
            schema=int(data.get("schema", SCHEMA)),
        )
