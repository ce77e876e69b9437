"""Lint, format and types are part of the test run, and the README's commands
are the ones CI runs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_check_and_format() -> None:
    check = _run("ruff", "check", ".")
    assert check.returncode == 0, check.stdout + check.stderr
    fmt = _run("ruff", "format", "--check", ".")
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


def test_mypy_strict() -> None:
    result = _run("mypy")
    assert result.returncode == 0, result.stdout + result.stderr


def _block(marker: str) -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(rf"<!-- {marker} -->\s*```sh\n(.+?)\n```\s*<!-- /{marker} -->", readme, re.S)
    assert match, f"README.md lacks the {marker} block"
    return match.group(1).strip()


def test_readme_starts_with_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    run, test = _block("run-command"), _block("test-command")
    assert readme.index(run) < readme.index(test) < readme.index("## Status")
    assert "python -m pytest" in test and "pip install" in run
    # .ci/run reads the test command out of the README rather than repeating it.
    assert "test-command" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
