"""Running probe commands: short timeouts, and never an exception."""

from __future__ import annotations

import shutil
import subprocess

from edgeoss.errors import ProbeFailed

PROBE_TIMEOUT_S = 3.0


def command(args: list[str], timeout: float = PROBE_TIMEOUT_S) -> str:
    """stdout of a command, or ProbeFailed (missing, hung, failed, denied)."""
    if shutil.which(args[0]) is None:
        raise ProbeFailed(f"{args[0]} is not installed")
    try:
        result = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise ProbeFailed(f"{args[0]} did not answer within {timeout:.0f} s") from exc
    except OSError as exc:
        raise ProbeFailed(f"{args[0]} could not run: {exc.strerror or exc}") from exc
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise ProbeFailed(f"{args[0]} failed ({result.returncode}): {detail[0] if detail else 'no output'}")
    return result.stdout
