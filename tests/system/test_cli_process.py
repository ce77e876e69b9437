"""The command line as a process: `python -m edgeoss` and its help."""

from __future__ import annotations

import subprocess
import sys


def test_module_entry_point_and_help() -> None:
    result = subprocess.run([sys.executable, "-m", "edgeoss", "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    for command in ("synth", "spec", "paths"):
        assert command in result.stdout
