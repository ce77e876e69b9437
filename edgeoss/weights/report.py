"""The result of verifying a model: named checks, each pass, fail or warn.

A failed check carries the name of its VerifyError subclass, so the report
stays plain data (JSON) and still maps to the failure class's exit code.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgeoss.errors import VerifyError

# Every failure class, by name (a Check stores the name so the Report stays JSON).
_ERRORS: dict[str, type[VerifyError]] = {VerifyError.__name__: VerifyError} | {
    cls.__name__: cls for cls in VerifyError.__subclasses__()
}


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    error: str = ""  # VerifyError subclass name when not ok
    warning: bool = False


@dataclass
class Report:
    path: str
    files: list[str] = field(default_factory=list)
    variant: str = "unknown"
    format: str = ""  # "gguf", "onnx-cpu", "onnx-cuda", ...
    checks: list[Check] = field(default_factory=list)
    quantization: dict[str, Any] = field(default_factory=dict)
    sha256: dict[str, str] = field(default_factory=dict)
    deep: bool = False
    remembered: str = ""  # when the file was last checked, if this report was remembered, not computed now

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks if not c.warning)

    @property
    def warnings(self) -> list[Check]:
        return [c for c in self.checks if c.warning and not c.ok]

    @property
    def failure(self) -> Check | None:
        return next((c for c in self.checks if not c.ok and not c.warning), None)

    def error(self) -> VerifyError:
        failed = self.failure
        if failed is None:
            raise ValueError("the report has no failure")
        return _ERRORS.get(failed.error, VerifyError)(f"{Path(self.path).name}: {failed.detail}")

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else self.error().exit_code

    def add(
        self, name: str, ok: bool, detail: str, error: type[VerifyError] = VerifyError, *, passed: str | None = None
    ) -> bool:
        """Record a check; `detail` explains a failure, `passed` (if given) a pass."""
        shown = passed if ok and passed is not None else detail
        self.checks.append(Check(name, ok, shown, "" if ok else error.__name__))
        return ok

    def warn(self, name: str, ok: bool, detail: str) -> None:
        self.checks.append(Check(name, ok, detail, warning=True))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        data["exit_code"] = self.exit_code
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        """The Report that to_dict() wrote (KeyError or TypeError for anything else)."""
        fields = {k: v for k, v in data.items() if k not in ("ok", "exit_code")}
        fields["checks"] = [Check(**c) for c in fields.get("checks", [])]
        return cls(**fields)

    def summary(self) -> str:
        if self.ok:
            return (
                f"OK {self.variant}: {len(self.checks)} checks passed"
                + (f", {len(self.warnings)} warnings" if self.warnings else "")
                + (f" (remembered from {self.remembered}; the file is unchanged)" if self.remembered else "")
            )
        failed = self.failure
        assert failed is not None
        return f"FAILED ({failed.name}): {failed.detail}"
