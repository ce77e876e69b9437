"""The server as a child process of the tray: start, stop, and what it is doing.

The tray never runs the model in its own process: a crash or an out-of-memory
kill takes the server down, not the tray, which then says so. The child is
`edgeoss serve` (the same binary when frozen, with PyInstaller's
PYINSTALLER_RESET_ENVIRONMENT=1 so a onefile child unpacks its own copy);
its output goes to server.log in the logs folder.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

from edgeoss import lifeline
from edgeoss.paths import paths

log = logging.getLogger(__name__)

STOP_GRACE_S = 15.0  # uvicorn's graceful shutdown is 5 s; unloading a big model takes a moment more
LOG_KEEP_BYTES = 5 * 1024 * 1024
_SUM = re.compile(r"^edgeoss_generation_tokens_per_second_sum (\S+)$", re.M)
_COUNT = re.compile(r"^edgeoss_generation_tokens_per_second_count (\S+)$", re.M)


def edgeoss_command() -> list[str]:
    """How to run edgeoss itself: the frozen binary, or this Python with -m."""
    if getattr(sys, "frozen", False):
        return [sys.executable]
    return [sys.executable, "-m", "edgeoss"]


@dataclass(frozen=True)
class Status:
    state: str  # stopped, starting, ready, failed, crashed
    detail: str = ""  # what went wrong, or what it is doing
    model: str = ""
    backend: str = ""
    port: int = 0
    tokens_per_s: float | None = None  # mean over the requests served so far

    @property
    def running(self) -> bool:
        return self.state in ("starting", "ready", "failed")


class Supervisor:
    def __init__(self, log_file: Path | None = None) -> None:
        self.log_file = log_file or paths().logs / "server.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._lifeline: lifeline.Lifeline | None = None
        self._log: IO[bytes] | None = None
        self._port = 0
        self._stopping = False
        self._lock = threading.Lock()
        self._last = Status("stopped")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    def start(self, model: str | None, port: int, effort: str, tools: Sequence[str] = ()) -> None:
        with self._lock:
            if self._process is not None and self._process.poll() is None:
                return
            self._close_lifeline()  # a server that crashed had one
            self._open_log()
            command = [*edgeoss_command(), "serve", *([model] if model else []), "--port", str(port)]
            command += ["--effort", effort]
            if tools:
                command += ["--tools", ",".join(tools)]
            env = dict(os.environ)
            if getattr(sys, "frozen", False):
                env["PYINSTALLER_RESET_ENVIRONMENT"] = "1"
            assert self._log is not None
            self._log.write(f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(command)}\n".encode())
            self._log.flush()
            log.info("starting the server: %s", " ".join(command))
            # A lifeline: a tray that is killed (or crashes) takes its server with it.
            # No standard input: it never asks to download. Its own process group: Ctrl-C in a
            # terminal that started the tray reaches the tray only.
            self._process, self._lifeline = lifeline.spawn(command, env, self._log, start_new_session=True)
            self._port, self._stopping = port, False
            self._last = Status("starting", "starting the server", port=port)

    def stop(self) -> None:
        with self._lock:
            process, self._process = self._process, None
            self._stopping = True
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                log.warning("the server did not stop in %.0f s; killing it", STOP_GRACE_S)
                process.kill()
                process.wait()
        self._close_lifeline()
        if self._log is not None:
            self._log.close()
            self._log = None
        self._last = Status("stopped")

    def _close_lifeline(self) -> None:
        if self._lifeline is not None:
            self._lifeline.close()
            self._lifeline = None

    def _open_log(self) -> None:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            if self.log_file.stat().st_size > LOG_KEEP_BYTES:
                self.log_file.replace(self.log_file.with_suffix(".log.1"))
        if self._log is None:
            self._log = self.log_file.open("ab")

    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    def poll(self, timeout: float = 1.0) -> Status:
        """What the server is doing now (asks /health and /metrics when it runs)."""
        process = self._process
        if process is None:
            return self._last
        code = process.poll()
        if code is not None:
            if not self._stopping:
                self._last = Status("crashed", f"the server exited with code {code}; see {self.log_file}")
                log.error("the server exited with code %s", code)
            self._process = None
            return self._last
        try:
            health = httpx.get(self.url + "/health", timeout=timeout).json()
        except (httpx.HTTPError, ValueError):
            return Status("starting", "starting the server", port=self._port)
        state = {"ready": "ready", "unloaded": "ready", "loading": "starting"}.get(health.get("status"), "failed")
        speed = None
        with contextlib.suppress(httpx.HTTPError):
            text = httpx.get(self.url + "/metrics", timeout=timeout).text
            total, count = _SUM.search(text), _COUNT.search(text)
            if total and count and float(count.group(1)) > 0:
                speed = float(total.group(1)) / float(count.group(1))
        self._last = Status(
            state,
            str(health.get("error") or health.get("status", "")),
            str(health.get("model", "")),
            str(health.get("backend", "")),
            self._port,
            speed,
        )
        return self._last
