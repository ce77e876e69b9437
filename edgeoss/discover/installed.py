"""Which inference backends this install can really use.

llama.cpp: whether llama-cpp-python imports, whether its build can offload
to a GPU, and the devices and CPU features its build reports. ONNX Runtime
GenAI: whether it imports and the execution providers ONNX Runtime lists.
Importing either loads native libraries, so it is done only here and only
when asked.
"""

from __future__ import annotations

import re

from edgeoss.discover.hardware import LlamaCpp, OrtGenAI
from edgeoss.engines.llamacpp import binding as llama_binding
from edgeoss.engines.llamacpp.placement import unsupported_reason
from edgeoss.engines.ortgenai import binding as ort_binding

# ggml backend names in llama.cpp's system info, as the devices they drive.
_DEVICE_NAMES = ("CUDA", "Metal", "Vulkan", "ROCm", "HIP", "SYCL", "BLAS", "CPU")


def parse_system_info(text: str) -> list[str]:
    """Devices named in llama_print_system_info ("CUDA : ARCHS = 900 | ... | CPU : ...")."""
    found = []
    for name in _DEVICE_NAMES:
        if re.search(rf"(^|\|)\s*{name}\s*:", text):
            found.append(name)
    return found


def probe_llama_cpp() -> LlamaCpp:
    try:
        llama_cpp = llama_binding.load()
    except Exception:
        return LlamaCpp(available=False)
    info = llama_cpp.llama_print_system_info()
    text = info.decode("utf-8", "replace") if isinstance(info, bytes) else str(info)
    return LlamaCpp(
        available=True,
        version=getattr(llama_cpp, "__version__", None),
        gpu_offload=bool(llama_cpp.llama_supports_gpu_offload()),
        devices=parse_system_info(text),
        system_info=text.strip(),
        expert_overrides=unsupported_reason() is None,
    )


def probe_ort_genai() -> OrtGenAI:
    try:
        onnxruntime_genai = ort_binding.load()
    except Exception:
        return OrtGenAI(available=False)
    providers: list[str] = []
    try:
        onnxruntime = ort_binding.load_onnxruntime()
        providers = [p.removesuffix("ExecutionProvider").lower() for p in onnxruntime.get_available_providers()]
    except Exception:
        providers = ["cpu"]
    return OrtGenAI(available=True, version=getattr(onnxruntime_genai, "__version__", None), providers=providers)
