"""Measure what llama.cpp really allocates for a model, to check edgeoss.planning.memory.

The model is loaded in a child process (so a crash or an abort cannot take the
caller down, and GPU memory is returned when it exits); llama.cpp's own log
lines ("CPU model buffer size = 2313.40 MiB", "CUDA0 KV buffer size = ...",
"CUDA0 compute buffer size = ...") give each buffer it allocated, by device.

Run on its own: python -m edgeoss.planning.measured MODEL.gguf [CTX] [N_GPU_LAYERS] [N_CPU_MOE]
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

MIB = 1024 * 1024

_BUFFER = re.compile(r"(\S+)\s+(model|KV|compute|output) buffer size =\s+([\d.]+) MiB")

_CHILD = """
import sys
from edgeoss.engines.llamacpp import binding as llama_binding
llama_cpp = llama_binding.load()
from edgeoss.engines.llamacpp.placement import experts_on_cpu
path, ctx, ngl, ubatch, n_cpu_moe = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
with experts_on_cpu(n_cpu_moe):
    llm = llama_cpp.Llama(model_path=path, n_ctx=ctx, n_batch=ubatch, n_ubatch=ubatch, n_gpu_layers=ngl,
                          flash_attn=True, swa_full=False, use_mmap=False, verbose=True)
llm.eval([1, 2, 3])
print("EDGEOSS_LOADED", flush=True)
try:
    import pynvml
    pynvml.nvmlInit()
    used = sum(pynvml.nvmlDeviceGetMemoryInfo(pynvml.nvmlDeviceGetHandleByIndex(i)).used
               for i in range(pynvml.nvmlDeviceGetCount()))
    print("EDGEOSS_NVML_USED", used, flush=True)
except Exception:
    pass
"""


@dataclass
class Measured:
    """Buffers llama.cpp reported, in bytes, keyed by device then kind."""

    buffers: dict[str, dict[str, int]] = field(default_factory=dict)
    log: str = ""
    nvml_used: int | None = None  # GPU memory the load added, as NVML saw it

    def device(self, name: str) -> int:
        return sum(self.buffers.get(name, {}).values())

    @property
    def host(self) -> int:
        """Everything in host memory (CPU, CPU_REPACK, CUDA_Host, ...)."""
        return sum(sum(kinds.values()) for dev, kinds in self.buffers.items() if _is_host(dev))

    @property
    def gpu(self) -> int:
        return sum(sum(kinds.values()) for dev, kinds in self.buffers.items() if not _is_host(dev))

    def kind(self, kind: str) -> int:
        return sum(kinds.get(kind, 0) for kinds in self.buffers.values())


def _is_host(device: str) -> bool:
    return device.startswith("CPU") or device.endswith("_Host")


def parse_log(text: str) -> Measured:
    measured = Measured()
    for device, kind, mib in _BUFFER.findall(text):
        kinds = measured.buffers.setdefault(device, {})
        kinds[kind] = kinds.get(kind, 0) + int(float(mib) * MIB)
    return measured


def measure(
    model: Path,
    context: int = 4096,
    n_gpu_layers: int = 0,
    n_cpu_moe: int = 0,
    n_ubatch: int = 512,
    timeout: float = 600,
) -> Measured:
    """Load `model` in a child process and return what llama.cpp allocated
    (and the log, for the overrides it applied)."""
    baseline = _nvml_used()
    result = subprocess.run(
        [sys.executable, "-c", _CHILD, str(model), str(context), str(n_gpu_layers), str(n_ubatch), str(n_cpu_moe)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if "EDGEOSS_LOADED" not in result.stdout:
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"llama.cpp could not load {model.name}: {' | '.join(tail)}")
    measured = parse_log(result.stderr)
    measured.log = result.stderr
    used = re.search(r"EDGEOSS_NVML_USED (\d+)", result.stdout)
    if used and baseline is not None:
        measured.nvml_used = int(used.group(1)) - baseline
    return measured


def _nvml_used() -> int | None:
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            count = pynvml.nvmlDeviceGetCount()
            return sum(
                int(pynvml.nvmlDeviceGetMemoryInfo(pynvml.nvmlDeviceGetHandleByIndex(i)).used) for i in range(count)
            )
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # no NVIDIA driver: nothing to compare with
        return None


def main() -> None:
    args = sys.argv[1:]
    if not args:
        raise SystemExit("usage: python -m edgeoss.planning.measured MODEL.gguf [CTX] [N_GPU_LAYERS] [N_CPU_MOE]")
    numbers = [int(a) for a in args[1:4]]
    context, n_gpu_layers, n_cpu_moe = (numbers + [4096, 0, 0][len(numbers) :])[:3]
    measured = measure(Path(args[0]), context, n_gpu_layers, n_cpu_moe)
    print(json.dumps(measured.buffers, indent=2))


if __name__ == "__main__":
    main()
