"""Import llama-cpp-python: the one place that does, so that it is done safely.

llama-cpp-python dlopens libllama and libggml when it is imported. On Linux,
when libstdc++ is already in the process with RTLD_LOCAL (numpy's extension
modules load it that way, and edgeoss imports numpy first), a CUDA build of
llama-cpp-python 0.3.36 segfaulted in llama.cpp's vocabulary loader (H100,
Python 3.12, numpy 2.5; the same build loads fine when llama_cpp is imported
first). Putting libstdc++ in the global scope before the import avoids it;
re-opening an already loaded library with RTLD_GLOBAL only promotes it.

A portable build (GGML_BACKEND_DL=ON, GGML_CPU_ALL_VARIANTS=ON: what the
edgeoss binary carries) keeps its backends as separate libraries
(libggml-cpu-haswell.so, ...). ggml looks for them next to the executable
and in the current folder, where a pip install or a binary's unpacked
libraries are not, so edgeoss registers them from llama_cpp/lib itself,
before anything asks ggml for a device.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import sys
from pathlib import Path
from types import ModuleType

from edgeoss.errors import EngineError

INSTALL_HINT = "pip install 'edgeoss[llama]' (compiles llama.cpp once)"
# ggml's own library, by soname: already loaded by llama_cpp, so this finds that copy.
_GGML = {"linux": "libggml.so.0", "darwin": "libggml.dylib", "win32": "ggml.dll"}

log = logging.getLogger(__name__)


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
    _register_backends(Path(llama_cpp.__file__).parent / "lib")
    return llama_cpp


@functools.cache
def _register_backends(lib: Path) -> int:
    """Load a GGML_BACKEND_DL build's backends from `lib`; the number registered.

    A build with its backends linked in has them registered already (count > 0)."""
    platform = "linux" if sys.platform.startswith("linux") else sys.platform
    if platform not in _GGML:
        return 0
    try:
        ggml = ctypes.CDLL(_GGML[platform])
    except OSError as exc:
        log.warning("could not open ggml to load its backends from %s: %s", lib, exc)
        return 0
    ggml.ggml_backend_reg_count.restype = ctypes.c_size_t
    if ggml.ggml_backend_reg_count() == 0:
        ggml.ggml_backend_load_all_from_path.argtypes = [ctypes.c_char_p]
        ggml.ggml_backend_load_all_from_path(str(lib).encode())
    count = int(ggml.ggml_backend_reg_count())
    log.debug("ggml backends registered from %s: %d", lib, count)
    return count
