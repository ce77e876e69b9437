"""Every error edgeoss raises, and every exit code: what failed, why, and what to do.

Each EdgeossError class carries the process exit code the CLI uses for it, so
scripts can tell failure classes apart without parsing text (the README's
table lists them). Below them: the errors that never reach a person as such
(a probe step that could not answer, a full queue, an HTTP error in the
request's API family), which the code that catches them turns into a note,
a 429 or an error body.
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


class UnexpectedError(EdgeossError):
    """Anything edgeoss did not foresee (a bug): one line on the terminal, the traceback in the log."""

    exit_code = 1


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


class NoModelError(EdgeossError):
    """No model to run: none installed, or the one named cannot run as asked."""

    exit_code = 20


class ModelNotFoundError(EdgeossError):
    """No stored model has that name."""

    exit_code = 20


class HubUnreachableError(EdgeossError):
    """No network, the Hub is down, or offline mode is on."""

    exit_code = 21


class HubNotFoundError(EdgeossError):
    """The repository, revision or file does not exist on the Hub."""

    exit_code = 22


class EngineError(EdgeossError):
    """An inference engine could not load a model or generate."""

    exit_code = 30


class ExportError(EdgeossError):
    """`export-onnx` failed, or lacks its dependencies."""

    exit_code = 31


class ExportDoesNotLoad(EdgeossError):
    """An export finished but does not load on the provider it was made for (`export-onnx --ep`)."""

    exit_code = 32


class NoDesktopError(EdgeossError):
    """`edgeoss tray` found no desktop session to show an icon in."""

    exit_code = 40


class ToolUnavailableError(EdgeossError):
    """A tool the model or the user asked for cannot run here (no sandbox for python, say)."""

    exit_code = 50


class WorkerError(EdgeossError):
    """A worker of `--workers` (llama.cpp's RPC server, run by `edgeoss worker`) cannot be
    used: unreachable, refusing this machine, another protocol version, or lost mid-run."""

    exit_code = 60


EXIT_CHECKS_FAILED = EdgeossError.exit_code
"""`doctor` with a failing check, `plan` when nothing fits: the general failure code."""


# --- not shown to a person as such --------------------------------------------------


class ProbeFailed(Exception):
    """A probe step could not answer; the hardware report says 'unknown' and why."""


class Busy(Exception):
    """The server's admission queue is full (a 429 with Retry-After)."""


class ContextOverflow(Exception):
    """A prompt that does not fit the context of one sequence (a 400 in the API's shape)."""

    def __init__(self, prompt_tokens: int, context: int, max_tokens: int) -> None:
        super().__init__(
            f"the prompt has {prompt_tokens} tokens but the context holds {context} per sequence; "
            "shorten the conversation or restart the server with a larger --ctx"
        )
        self.prompt_tokens, self.context, self.max_tokens = prompt_tokens, context, max_tokens


class ApiError(Exception):
    """An error a request gets: the HTTP status and OpenAI's error fields. The
    server renders it in OpenAI's shape on /v1 and in Ollama's on /api."""

    def __init__(
        self,
        status: int,
        message: str,
        type_: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type_, param, code
        self.headers = headers or {}

    def openai(self) -> dict[str, object]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}
