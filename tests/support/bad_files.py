"""What every bad file must get: a failed report with its error's exit code and
reason, from verify() and from `edgeoss verify --json` alike."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from edgeoss import errors
from edgeoss.cli import app
from edgeoss.weights.gguf.checks import verify

runner = CliRunner()


def fails_with(path: Path, error: type[errors.VerifyError], fragment: str, **kwargs: object) -> None:
    report = verify(path, **kwargs)  # type: ignore[arg-type]
    assert not report.ok
    assert report.exit_code == error.exit_code, report.summary()
    assert fragment in report.summary()
    flags = ["--deep"] if kwargs.get("deep") else []
    flags += ["--sha256", str(kwargs["sha256"])] if kwargs.get("sha256") else []
    result = runner.invoke(app, ["verify", str(path), "--json", *flags])
    assert result.exit_code == error.exit_code
    assert json.loads(result.stdout)["ok"] is False
