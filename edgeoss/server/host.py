"""The model a server runs: loaded in the background, shared by requests
through a bounded admission queue, unloaded after keep-alive idle and
reloaded on the next request."""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edgeoss.backends import LLAMA_CPP
from edgeoss.engines.base import LoadSettings, QueuedEngine
from edgeoss.errors import Busy, EdgeossError, UsageError

log = logging.getLogger(__name__)

_DURATION = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_keep_alive(text: str) -> float | None:
    """Seconds a model stays loaded while idle, Ollama-style ("5m", "30s",
    "1h", "0" = unload after each request); None (from any negative value):
    never unload."""
    match = _DURATION.match(text)
    if not match:
        raise UsageError(f"keep-alive {text!r}", hint='a duration such as "5m", "30s", "1h", "0" or "-1"')
    seconds = float(match.group(1)) * _UNIT[match.group(2)]
    return None if seconds < 0 else seconds


@dataclass(frozen=True)
class ModelInfo:
    name: str  # what clients call it
    path: Path
    variant: str  # gpt-oss-20b, gpt-oss-120b, or the synthetic name
    is_demo: bool
    size_bytes: int
    quantization: str = "MXFP4"
    backend: str = LLAMA_CPP.label  # the engine, as people see it (backends.EngineKind.label)
    placement: str = ""  # where it will run, until the loaded engine says where it does


class ModelHost:
    def __init__(
        self,
        info: ModelInfo,
        settings: LoadSettings,
        parallel: int,
        queue_size: int,
        keep_alive_s: float | None,
        engine_factory: Callable[[Path, LoadSettings, int], QueuedEngine],
        on_state: Callable[[str, str], None] | None = None,
    ) -> None:
        self.info = info
        self.settings = settings
        self.parallel = parallel
        self.capacity = parallel + queue_size
        self.keep_alive_s = keep_alive_s
        self._factory = engine_factory
        self._on_state = on_state  # (state, detail): for the console while serving
        self.state = "unloaded"  # loading, ready, unloaded, failed
        self.error = ""
        self.engine: QueuedEngine | None = None
        self.in_flight = 0
        self.loads = 0
        self.last_used = time.monotonic()
        self.loaded_at = 0.0
        self._lock = threading.Lock()
        self._ready = threading.Event()

    # ------------------------------------------------------------- loading

    def start_loading(self) -> None:
        with self._lock:
            if self.state in ("loading", "ready"):
                return
            self.state, self.error = "loading", ""
            self._ready.clear()
        self._tell("loading", f"loading {self.info.name} ({self.info.size_bytes / 1e9:.2f} GB)")
        threading.Thread(target=self._load, name="edgeoss-load", daemon=True).start()

    def _load(self) -> None:
        started = time.monotonic()
        try:
            engine = self._factory(self.info.path, self.settings, self.parallel)
        except EdgeossError as exc:
            log.error("loading %s failed: %s", self.info.name, exc)
            with self._lock:
                self.state, self.error = "failed", str(exc)
            self._tell("failed", f"loading {self.info.name} failed: {exc}")
        except Exception as exc:  # the server must stay up to say what went wrong
            log.exception("loading %s failed", self.info.name)
            with self._lock:
                self.state, self.error = "failed", f"{type(exc).__name__}: {exc}"
            self._tell("failed", f"loading {self.info.name} failed: {self.error}")
        else:
            with self._lock:
                self.engine, self.state = engine, "ready"
                self.loads += 1
                self.loaded_at = time.time()
                self.last_used = time.monotonic()
            log.info("%s loaded in %.1f s", self.info.name, time.monotonic() - started)
            self._tell("ready", f"{self.info.name} ready in {time.monotonic() - started:.1f} s")
        finally:
            self._ready.set()

    def check_broken(self) -> None:
        """A ready engine that can no longer generate (a worker lost mid-run) makes the host failed."""
        engine = self.engine
        broken = getattr(engine, "broken", "") if engine is not None else ""
        if broken and self.state == "ready":
            with self._lock:
                self.state, self.error = "failed", broken
            self._tell("failed", broken)

    async def ready_engine(self) -> QueuedEngine:
        """The engine, loading it first when keep-alive unloaded it."""
        self.check_broken()
        if self.state == "failed" and self.engine is not None:
            raise EdgeossError(self.error)  # broken for good: a reload would not help
        if self.state != "ready":
            self.start_loading()
            await asyncio.to_thread(self._ready.wait)
        engine = self.engine
        if self.state != "ready" or engine is None:
            raise EdgeossError(f"the model could not be loaded: {self.error}")
        return engine

    # ------------------------------------------------------------- admission

    def admit(self) -> None:
        with self._lock:
            if self.in_flight >= self.capacity:
                raise Busy(f"{self.in_flight} requests are running or queued (the limit is {self.capacity})")
            self.in_flight += 1

    def release(self) -> None:
        with self._lock:
            self.in_flight -= 1
            self.last_used = time.monotonic()

    # ------------------------------------------------------------- keep-alive

    def unload_if_idle(self) -> bool:
        with self._lock:
            idle = time.monotonic() - self.last_used
            if self.state != "ready" or self.in_flight or self.keep_alive_s is None or idle < self.keep_alive_s:
                return False
            engine, self.engine, self.state = self.engine, None, "unloaded"
            self._ready.clear()
        log.info("%s unloaded after %.0f s idle (keep-alive %s s)", self.info.name, idle, self.keep_alive_s)
        if engine is not None:
            engine.close()
        self._tell("unloaded", f"{self.info.name} unloaded after {idle:.0f} s idle; the next request reloads it")
        return True

    def _tell(self, state: str, detail: str) -> None:
        if self._on_state is not None:
            try:
                self._on_state(state, detail)
            except Exception:  # the console is a courtesy; serving goes on
                log.exception("state callback failed")

    def close(self) -> None:
        with self._lock:
            engine, self.engine, self.state = self.engine, None, "unloaded"
        if engine is not None:
            engine.close()
