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


class CheckpointError(EdgeossError):
    """An original (safetensors) checkpoint is incomplete, inconsistent or not gpt-oss."""

    exit_code = 19


class VerifyError(EdgeossError):
    """A model file failed verification. Each subclass is one failure class
    with its own exit code, so scripts can tell them apart."""

    exit_code = 10


class FileAccessError(VerifyError):
    """The file cannot be opened or read."""

    exit_code = 10


class NotGGUFError(VerifyError):
    """Wrong magic or an unsupported GGUF version."""

    exit_code = 11


class StructureError(VerifyError):
    """Header, metadata or tensor table is truncated, out of bounds or absurd."""

    exit_code = 12


class SpecMismatchError(VerifyError):
    """Architecture or hyper-parameters are not gpt-oss."""

    exit_code = 13


class TensorInventoryError(VerifyError):
    """Tensors missing, extra, or of the wrong shape or type."""

    exit_code = 14


class VocabularyError(VerifyError):
    """The vocabulary is not o200k_harmony."""

    exit_code = 15


class ChatTemplateError(VerifyError):
    """The chat template is missing or known to be wrong."""

    exit_code = 16


class ChecksumError(VerifyError):
    """The sha256 differs from the expected one."""

    exit_code = 17


class BadNumbersError(VerifyError):
    """NaN/Inf in float tensors or MXFP4 scales out of a sane range."""

    exit_code = 18


class EngineError(EdgeossError):
    """An inference engine could not load a model or generate."""

    exit_code = 30
