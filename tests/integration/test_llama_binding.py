"""edgeoss imports llama-cpp-python through one helper that first puts libstdc++
in the process's global symbol scope (a CUDA build segfaulted loading a model
when numpy had loaded libstdc++ locally first)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

CHILD = r"""
import ctypes, sys
import numpy  # loads libstdc++ with RTLD_LOCAL, as it does before any engine import
ctypes.CDLL("libstdc++.so.6")  # make sure it is loaded, locally, whatever numpy's build
symbol = "_ZNSt6locale7classicEv"  # std::locale::classic(), defined only by libstdc++
print("before", hasattr(ctypes.CDLL(None), symbol))
from edgeoss.engines.llamacpp import binding as llama_binding
llama_cpp = llama_binding.load()
print("after", hasattr(ctypes.CDLL(None), symbol))
llm = llama_cpp.Llama(model_path=sys.argv[1], vocab_only=True, verbose=False)
print("vocab", llm.n_vocab())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RTLD scopes are a Linux (glibc) matter")
def test_libstdcxx_is_global_before_llama_cpp_loads(tiny_gguf: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(tiny_gguf)], capture_output=True, text=True, timeout=300, check=True
    ).stdout.split("\n")
    assert "before False" in out  # the child really starts with libstdc++ local only
    assert "after True" in out
    assert "vocab 201088" in out
