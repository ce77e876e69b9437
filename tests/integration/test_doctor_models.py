"""`edgeoss doctor` verifies the installed models (on the tiny GGUF)."""

from __future__ import annotations

from pathlib import Path

from edgeoss.discover.hardware import HardwareReport
from edgeoss.planning import doctor
from edgeoss.planning.planner import plan


def test_doctor_verifies_installed_models(tiny_gguf: Path) -> None:
    from edgeoss.weights import importer

    importer.import_path(tiny_gguf, name="mine")
    report = HardwareReport()
    (check,) = [c for c in doctor.diagnose(report, plan(report)) if c.label == "mine"]
    assert check.status == "pass" and "OK" in check.detail
