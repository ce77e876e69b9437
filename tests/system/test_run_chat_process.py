"""`edgeoss chat` as a process on the demo model: its slash commands."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("llama_cpp")


def test_chat_commands(edgeoss_home: Path) -> None:
    script = (
        "/effort high\nHello \\\nthere\n/effort silly\n/reasoning show\n/reasoning sideways\n/show\n/clear\n/exit\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "edgeoss", "chat", "demo", "--max-tokens", "5"],
        input=script,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "EDGEOSS_HOME": str(edgeoss_home)},
    )
    assert result.returncode == 0, result.stderr
    assert "effort high" in result.stderr and "usage: /effort" in result.stderr and "history cleared" in result.stderr
    assert "reasoning show" in result.stderr and "usage: /reasoning" in result.stderr
    assert result.stdout.count("you> ") == 8
