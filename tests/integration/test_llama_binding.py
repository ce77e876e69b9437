"""edgeoss imports llama-cpp-python through one helper that first puts libstdc++
in the process's global symbol scope (a CUDA build segfaulted loading a model
when numpy had loaded libstdc++ locally first)."""

from __future__ import annotations

import subprocess
import sys
import threading
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


def test_a_loading_model_leaves_other_threads_the_real_stderr(
    tiny_gguf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While llama.cpp loads (and prints its metadata, kept for the log), another thread
    that spawns a child with sys.stderr, as the MCP SDK does, still gets a real stream."""
    from edgeoss.engines.base import LoadSettings
    from edgeoss.engines.llamacpp import engine

    llama_cpp = engine.llama_binding.load()
    real_llama = llama_cpp.Llama
    seen: list[str] = []

    def spawn_from_another_thread() -> None:
        try:
            subprocess.run([sys.executable, "-c", "pass"], stderr=sys.stderr, check=True, timeout=60)
            seen.append("spawned")
        except Exception as exc:
            seen.append(f"{type(exc).__name__}: {exc}")

    def llama_while_another_thread_spawns(*args: object, **kwargs: object) -> object:
        other = threading.Thread(target=spawn_from_another_thread)
        other.start()
        other.join(60)
        return real_llama(*args, **kwargs)

    monkeypatch.setattr(llama_cpp, "Llama", llama_while_another_thread_spawns)
    real = (tmp_path / "stderr").open("w")
    monkeypatch.setattr(sys, "stderr", real)
    llm, _ = engine.open_llama(tiny_gguf, LoadSettings(context_length=256, use_mmap=False, threads=1))
    llm.close()
    assert seen == ["spawned"]
