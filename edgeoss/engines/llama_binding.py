"""Import llama-cpp-python: the one place that does, so that it is done safely.

llama-cpp-python dlopens libllama and libggml when it is imported. On Linux,
when libstdc++ is already in the process with RTLD_LOCAL (numpy's extension
modules load it that way, and edgeoss imports numpy first), a CUDA build of
llama-cpp-python 0.3.36 segfaulted in llama.cpp's vocabulary loader (H100,
Python 3.12, numpy 2.5; the same build loads fine when llama_cpp is imported
first). Putting libstdc++ in the global scope before the import avoids it;
re-opening an already loaded library with RTLD_GLOBAL only promotes it.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import sys
from types import ModuleType

from edgeoss.errors import EngineError

INSTALL_HINT = "pip install 'edgeoss[llama]' (compiles llama.cpp once)"


@functools.cache
def _promote_libstdcxx() -> None:
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):  # a system without libstdc++: nothing to promote
            ctypes.CDLL("libstdc++.so.6", mode=ctypes.RTLD_GLOBAL)


def load() -> ModuleType:
    """The llama_cpp module, or EngineError saying how to install it."""
    _promote_libstdcxx()  # once per process
    try:
        import llama_cpp
    except ImportError as exc:
        raise EngineError("llama-cpp-python is not installed", hint=INSTALL_HINT) from exc
    except OSError as exc:  # its shared libraries did not load (missing CUDA runtime, wrong arch)
        raise EngineError(f"llama-cpp-python's libraries did not load: {exc}", hint=INSTALL_HINT) from exc
    return llama_cpp
