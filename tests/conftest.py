"""Shared fixtures: an isolated EDGEOSS_HOME and synthetic checkpoints."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from edgeoss.weights import synth


@pytest.fixture(autouse=True)
def edgeoss_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Keep every test's config, cache, data and logs out of the real home."""
    home = tmp_path_factory.mktemp("edgeoss-home")
    monkeypatch.setenv("EDGEOSS_HOME", str(home))
    yield home


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny synthetic gpt-oss checkpoint (seed 0), written once per session."""
    out = tmp_path_factory.mktemp("ckpt") / "tiny"
    return synth.write_checkpoint(out, synth.plan(synth.hparams_for("tiny"), seed=0))


@pytest.fixture(scope="session")
def tiny_gguf(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny checkpoint converted to GGUF (bf16 matrices, as shipped)."""
    from edgeoss.weights.gguf import convert

    out = tmp_path_factory.mktemp("gguf") / "tiny.gguf"
    convert.convert(tiny_checkpoint, out)
    return out


@pytest.fixture(scope="session")
def tiny_f32_gguf(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same conversion with f32 matrices (lossless too), for exact numerics."""
    from edgeoss.weights.gguf import convert

    out = tmp_path_factory.mktemp("gguf") / "tiny-f32.gguf"
    convert.convert(tiny_checkpoint, out, outtype="f32")
    return out


@pytest.fixture(scope="session")
def tiny_onnx(tiny_checkpoint: Path) -> Path:
    """The tiny checkpoint as an ONNX Runtime GenAI folder (fp32, CPU): built
    once by `edgeoss export-onnx` and cached (tests/support/onnx_fixture.py)."""
    pytest.importorskip("onnxruntime_genai")
    import onnx_fixture
    from edgeoss.weights.onnx import export as export_onnx

    found = onnx_fixture.cached()
    if found is not None:
        return found
    missing = export_onnx.missing_dependencies()
    if missing:
        pytest.skip(f"no cached ONNX fixture, and building one needs {', '.join(missing)}")
    return onnx_fixture.build(tiny_checkpoint)
