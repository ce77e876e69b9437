"""An `edgeoss convert` process interrupted while it writes leaves nothing behind."""

from __future__ import annotations

from pathlib import Path

from interrupt import interrupt_while_writing


def test_sigint_during_conversion_leaves_nothing(tiny_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "interrupted.gguf"
    code, stderr = interrupt_while_writing(
        ["convert", str(tiny_checkpoint), "-o", str(out), "--json"], tmp_path, ".interrupted.gguf.partial-*"
    )
    assert code == 130, stderr
    assert "nothing half-written" in stderr
    assert list(tmp_path.iterdir()) == []
