"""Shared fixtures: an isolated EDGEOSS_HOME and synthetic checkpoints."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from edgeoss import synth


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
