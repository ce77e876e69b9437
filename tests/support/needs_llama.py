"""Tests import llama-cpp-python the way edgeoss does (engines.llama_binding),
never with a bare import, so they exercise the product's load order."""

from __future__ import annotations

from types import ModuleType

import pytest

from edgeoss.engines.llamacpp import binding as llama_binding
from edgeoss.errors import EngineError


def llama_cpp() -> ModuleType:
    """The llama_cpp module, or skip the calling test (or module) when it is not installed."""
    try:
        return llama_binding.load()
    except EngineError as exc:
        pytest.skip(str(exc), allow_module_level=True)
