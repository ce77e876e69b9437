"""The built-in `python` tool: a stateful interpreter per conversation, in the sandbox.

gpt-oss was trained to send Python to `python` and to read back what a
notebook cell shows (openai-harmony's tool description: "a stateful Jupyter
notebook environment ... time out after 120.0 seconds ... the drive at
'/mnt/data'"). A `PythonSession` is one sandboxed interpreter
(python_worker.py under sandbox.py) with its own scratch folder; `Sessions`
keeps one per conversation, ends those idle too long, and bounds how many
live at once. A call that runs past its time kills the whole sandbox: the
next call starts a fresh interpreter, and the answer says the state was lost.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import psutil

from edgeoss import fsutil
from edgeoss.errors import ToolUnavailableError
from edgeoss.paths import paths
from edgeoss.tools import PYTHON_TIMEOUT_S, python_worker, sandbox
from edgeoss.tools.conversations import PerConversation

log = logging.getLogger(__name__)

NAME = "python"

WATCH_MEMORY = sys.platform == "darwin"
"""macOS enforces no address-space limit (RLIMIT_AS is accepted and ignored): there the
session watches the interpreter's resident memory while it runs and kills it past the cap."""


@dataclass(frozen=True)
class Limits:
    """What one python session may use. The defaults suit a laptop shared with the model."""

    timeout_s: float = PYTHON_TIMEOUT_S  # per call, wall clock
    memory_bytes: int = 2 << 30  # address space of the interpreter
    cpu_seconds: int = 600  # CPU time over the session's life
    file_bytes: int = 256 << 20  # the largest file it may write
    scratch_bytes: int = 1 << 30  # its scratch folder, checked after every call
    tmp_bytes: int = 64 << 20  # its private /tmp (memory)
    open_files: int = 256
    output_chars: int = 20_000  # of stdout, of stderr and of the result, each
    idle_s: float = 30 * 60  # a session unused this long is ended
    max_sessions: int = 4  # live at once; the least recently used is ended for a new one


@dataclass
class Result:
    """What one call produced, and how it ended."""

    stdout: str = ""
    stderr: str = ""
    result: str | None = None
    error: str | None = None
    dropped: int = 0  # output characters past the cap
    ended: str = ""  # "", or why the interpreter was stopped (state lost)
    seconds: float = 0.0

    def text(self) -> str:
        """The tool's message to the model: what a notebook cell would show."""
        parts = [p.rstrip("\n") for p in (self.stdout, self.stderr) if p]
        if self.result is not None:
            parts.append(self.result)
        if self.error:
            parts.append(self.error.rstrip("\n"))
        if self.dropped:
            parts.append(f"[output truncated: {self.dropped:,} more characters]")
        if self.ended:
            parts.append(f"[{self.ended}; the interpreter was restarted and its state is lost]")
        return "\n".join(parts) if parts else "[no output]"

    def to_dict(self) -> dict[str, object]:
        return {
            "stdout": self.stdout,
            "stderr": self.stderr,
            "result": self.result,
            "error": self.error,
            "dropped": self.dropped,
            "ended": self.ended,
            "seconds": round(self.seconds, 3),
        }


def _interpreter() -> tuple[str, list[Path], list[str]]:
    if getattr(sys, "frozen", False):
        raise ToolUnavailableError(
            "the python tool needs a Python installation; the edgeoss binary has none to give the sandbox",
            hint="install edgeoss with pip to use the python tool (the binary's sandbox is not built yet)",
        )
    return sandbox.interpreter()


class PythonSession:
    """One sandboxed interpreter and its scratch folder."""

    def __init__(self, limits: Limits | None = None, scratch_root: Path | None = None) -> None:
        self.limits = limits or Limits()
        self.id = uuid.uuid4().hex[:12]
        root = scratch_root or paths().cache / "python"
        self.scratch = root / self.id
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._over_memory = False  # the watchdog stopped it (where the kernel caps no address space)

    # --- the process -----------------------------------------------------------------------------

    def _start(self) -> subprocess.Popen[bytes]:
        status = sandbox.status()
        if not status.available:
            raise ToolUnavailableError(f"the python tool is unavailable: {status.detail}", hint=status.fix)
        executable, read_only, packages = _interpreter()
        worker = Path(python_worker.__file__).resolve()
        self.scratch.mkdir(parents=True, exist_ok=True)
        lim = self.limits
        program = [executable, "-I", "-B", str(worker)]
        program += ["--memory", str(lim.memory_bytes), "--cpu", str(lim.cpu_seconds)]
        program += ["--file-bytes", str(lim.file_bytes), "--open-files", str(lim.open_files)]
        program += ["--output", str(lim.output_chars)]
        for folder in packages:
            program += ["--path", folder]
        env = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
        proc = sandbox.spawn(
            program, scratch=self.scratch, read_only=[*read_only, worker.parent], env=env, tmp_bytes=lim.tmp_bytes
        )
        ready = self._read(proc, deadline=time.monotonic() + 30)
        if ready is None or not ready.get("ready"):
            said = self._stop(proc)
            raise ToolUnavailableError(f"the python sandbox did not start: {said or 'no answer'}")
        return proc

    def _read(self, proc: subprocess.Popen[bytes], deadline: float) -> dict[str, object] | None:
        """One answer line from the worker, or None at the deadline or when it died. Bounded:
        a line longer than any honest answer is the worker's failure, not a reason to grow."""
        assert proc.stdout is not None
        limit = 16 * self.limits.output_chars + 4096
        fd = proc.stdout.fileno()
        os.set_blocking(fd, False)
        buffer = bytearray()
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while True:
                newline = buffer.find(b"\n")
                if newline >= 0:
                    try:
                        answer = json.loads(buffer[:newline])
                    except ValueError:
                        return None
                    return answer if isinstance(answer, dict) else None
                if len(buffer) > limit:
                    return None
                left = deadline - time.monotonic()
                if WATCH_MEMORY and self._memory_past_cap(proc):
                    self._over_memory = True
                    return None
                if left <= 0 or not sel.select(min(left, 0.2 if WATCH_MEMORY else 0.5)):
                    if left <= 0 or proc.poll() is not None:
                        return None
                    continue
                try:
                    chunk = os.read(fd, 65536)
                except BlockingIOError:
                    continue
                if not chunk:
                    return None
                buffer += chunk

    def _memory_past_cap(self, proc: subprocess.Popen[bytes]) -> bool:
        try:
            return int(psutil.Process(proc.pid).memory_info().rss) > self.limits.memory_bytes
        except (psutil.Error, OSError):
            return False  # it ended: the read says how

    def _stop(self, proc: subprocess.Popen[bytes]) -> str:
        """Kill the sandbox, all of it; what bubblewrap said on stderr, if anything."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        try:
            _, err = proc.communicate(timeout=10)
        except (subprocess.TimeoutExpired, ValueError, OSError):
            return ""
        return (err or b"").decode(errors="replace").strip()[-500:]

    # --- calls -----------------------------------------------------------------------------------

    def run(self, code: str) -> Result:
        """Run `code`; its output, its last expression's repr, or its error."""
        with self._lock:
            started = time.monotonic()
            if self._proc is None or self._proc.poll() is not None:
                self._proc = self._start()
            proc = self._proc
            assert proc.stdin is not None
            try:
                proc.stdin.write(json.dumps({"code": code}).encode() + b"\n")
                proc.stdin.flush()
            except (BrokenPipeError, OSError):
                pass  # it died: the read below says how
            answer = self._read(proc, deadline=started + self.limits.timeout_s)
            result = Result(seconds=time.monotonic() - started)
            if answer is None:
                died = proc.poll()
                self._stop(proc)
                self._proc = None
                result.ended = self._why(died, time.monotonic() - started)
            else:
                result.stdout = str(answer.get("stdout") or "")
                result.stderr = str(answer.get("stderr") or "")
                value = answer.get("result")
                result.result = value if isinstance(value, str) else None
                error = answer.get("error")
                result.error = error if isinstance(error, str) else None
                dropped = answer.get("dropped")
                result.dropped = dropped if isinstance(dropped, int) else 0
            used = fsutil.tree_bytes(self.scratch) if self.scratch.exists() else 0
            if used > self.limits.scratch_bytes:
                self.close()
                cap = fsutil.human_bytes(self.limits.scratch_bytes)
                result.ended = f"the scratch folder grew to {fsutil.human_bytes(used)}, past its {cap}; it was emptied"
            return result

    def _why(self, returncode: int | None, elapsed: float) -> str:
        if self._over_memory:
            self._over_memory = False
            return f"the interpreter used more than {fsutil.human_bytes(self.limits.memory_bytes)} of memory"
        if returncode is None:
            return f"the code ran past {self.limits.timeout_s:g} s and was stopped"
        if returncode in (-signal.SIGXCPU, 128 + signal.SIGXCPU, -signal.SIGKILL, 128 + signal.SIGKILL):
            return f"the interpreter used up its CPU time ({self.limits.cpu_seconds} s) and was stopped"
        return f"the interpreter ended (exit status {returncode}) after {elapsed:.1f} s"

    def close(self) -> None:
        if self._proc is not None:
            self._stop(self._proc)
            self._proc = None
        if self.scratch.exists():
            fsutil.remove_tree(self.scratch)

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None


class Sessions(PerConversation[PythonSession]):
    """One python session per conversation, with idle expiry and a bound on how many live."""

    def __init__(self, limits: Limits | None = None, scratch_root: Path | None = None) -> None:
        self.limits = limits or Limits()
        lim = self.limits
        super().__init__(lambda: PythonSession(lim, scratch_root), lim.max_sessions, lim.idle_s)
