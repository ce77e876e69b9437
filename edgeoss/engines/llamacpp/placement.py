"""What llama-cpp-python's Llama() has no argument for: keep the MoE experts of
the first N layers in host memory (llama.cpp's --n-cpu-moe), and give a context
several sequences (for batched decoding).

For the experts: its model parameters carry llama.cpp's `tensor_buft_overrides` field: a NULL-terminated array of
{regex pattern, buffer type}. We fill it with one pattern per layer,
`blk\\.N\\.ffn_(up|down|gate)_exps`, pointing at ggml's CPU buffer type, which
is exactly what llama.cpp's own --n-cpu-moe does.
"""

from __future__ import annotations

import contextlib
import ctypes
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edgeoss.engines.llamacpp import binding as llama_binding


class _Override(ctypes.Structure):
    _fields_ = [("pattern", ctypes.c_char_p), ("buft", ctypes.c_void_p)]


def expert_patterns(n_cpu_moe: int) -> list[str]:
    return [rf"blk\.{i}\.ffn_(up|down|gate)_exps" for i in range(n_cpu_moe)]


def _cpu_buffer_type() -> int:
    llama_cpp = llama_binding.load()
    lib_dir = Path(str(llama_cpp.__file__)).parent / "lib"
    for name in ("libggml-cpu.so", "libggml-cpu.dylib", "ggml-cpu.dll", "libggml.so", "libggml.dylib", "ggml.dll"):
        if (lib_dir / name).exists():
            lib = ctypes.CDLL(str(lib_dir / name))
            if hasattr(lib, "ggml_backend_cpu_buffer_type"):
                lib.ggml_backend_cpu_buffer_type.restype = ctypes.c_void_p
                buft = lib.ggml_backend_cpu_buffer_type()
                if buft:
                    return int(buft)
    raise RuntimeError("ggml's CPU buffer type was not found in llama-cpp-python's libraries")


def unsupported_reason() -> str | None:
    """None when this llama-cpp-python can keep experts on the CPU; otherwise why not."""
    try:
        binding = llama_binding.load().llama_cpp
    except Exception as exc:  # not installed, or its libraries do not load
        return str(exc)
    fields = {name for name, *_ in getattr(binding.llama_model_params, "_fields_", [])}
    if "tensor_buft_overrides" not in fields:
        return "its model parameters have no tensor_buft_overrides field"
    try:
        _cpu_buffer_type()
    except Exception as exc:
        return str(exc)
    return None


@contextlib.contextmanager
def experts_on_cpu(n_cpu_moe: int) -> Iterator[None]:
    """While active, models loaded by llama_cpp.Llama keep the experts of
    layers 0..n_cpu_moe-1 on the CPU."""
    if n_cpu_moe <= 0:
        yield
        return
    binding = llama_binding.load().llama_cpp

    buft = _cpu_buffer_type()
    patterns = [p.encode() for p in expert_patterns(n_cpu_moe)]
    overrides = (_Override * (len(patterns) + 1))(*[_Override(p, buft) for p in patterns], _Override(None, None))
    original = binding.llama_model_default_params

    def with_overrides() -> Any:
        params = original()
        params.tensor_buft_overrides = ctypes.cast(overrides, ctypes.c_void_p)
        return params

    # Llama() reads its defaults from the binding module at load time.
    binding.llama_model_default_params = with_overrides
    try:
        yield
    finally:
        binding.llama_model_default_params = original


@contextlib.contextmanager
def sequences(n_seq_max: int) -> Iterator[None]:
    """While active, contexts created by llama_cpp.Llama hold `n_seq_max`
    sequences in one unified KV cache (llama-cpp-python has no argument for it)."""
    if n_seq_max <= 1:
        yield
        return
    binding = llama_binding.load().llama_cpp
    original = binding.llama_context_default_params

    def with_sequences() -> Any:
        params = original()
        params.n_seq_max = n_seq_max
        params.kv_unified = True  # one pool of cells: a lone long conversation may use them all
        return params

    binding.llama_context_default_params = with_sequences
    try:
        yield
    finally:
        binding.llama_context_default_params = original
