"""Named errors: what failed, why, and what to do about it.

Each class carries the process exit code the CLI uses for it, so scripts can
tell failure classes apart without parsing text.
"""

from __future__ import annotations


class EdgeossError(Exception):
    """Base of every error edgeoss reports to a person."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class UsageError(EdgeossError):
    """The command was asked for something that cannot be done as stated."""

    exit_code = 2


class OutputExistsError(UsageError):
    """The destination already holds something we would overwrite."""


class DiskFullError(EdgeossError):
    """Not enough free space for what is being written."""

    exit_code = 3


class DataIntegrityError(EdgeossError):
    """A file edgeoss ships or reads does not have the content it must have."""

    exit_code = 4


class InterruptedByUser(EdgeossError):
    """Ctrl-C or SIGTERM; whatever was half-written has been removed."""

    exit_code = 130
