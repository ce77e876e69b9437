"""An `edgeoss synth` process interrupted while it writes leaves nothing behind."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from interrupt import interrupt_while_writing


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_leaves_nothing(tmp_path: Path, sig: signal.Signals) -> None:
    out = tmp_path / "interrupted"
    code, stderr = interrupt_while_writing(
        ["synth", str(out), "--scale", "small", "--json"], tmp_path, ".interrupted.partial-*/*.safetensors", sig
    )
    assert code == 130, stderr
    assert "nothing half-written" in stderr
    assert list(tmp_path.iterdir()) == []
