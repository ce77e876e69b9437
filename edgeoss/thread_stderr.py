"""Capture what one thread prints to sys.stderr, and only that thread.

contextlib.redirect_stderr swaps sys.stderr for the whole process: while a model
loaded (llama-cpp-python prints its metadata with print(file=sys.stderr)), every
other thread that looked at sys.stderr got the capture buffer instead. The MCP
SDK spawned its stdio servers with that buffer as their stderr and failed
("fileno"), and rich's console, which resolves sys.stderr on each write, lost the
server's own warnings into it. Here sys.stderr becomes, once, a router that sends
a thread's writes to its buffer while it captures and everything else (other
threads, fileno, isatty, encoding) to the real stream.
"""

from __future__ import annotations

import contextlib
import io
import sys
import threading
from collections.abc import Iterator
from typing import Any, TextIO

_install = threading.Lock()


class _Router:
    """sys.stderr while any thread captures: per-thread buffers, else the real stream."""

    def __init__(self, real: TextIO | None) -> None:
        self.real = real
        self.local = threading.local()

    def _target(self) -> TextIO | None:
        buffer: TextIO | None = getattr(self.local, "buffer", None)
        return buffer if buffer is not None else self.real

    def write(self, text: str) -> int:
        target = self._target()
        return target.write(text) if target is not None else len(text)  # no console (a windowed app)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        target = self._target()
        if target is not None:
            target.flush()

    def fileno(self) -> int:
        # Always the real stream's: a child process given sys.stderr inherits the console, not a buffer.
        if self.real is None:
            raise io.UnsupportedOperation("fileno")
        return self.real.fileno()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def _router() -> _Router:
    with _install:
        current: Any = sys.stderr
        if isinstance(current, _Router):
            return current
        router = _Router(current)
        sys.stderr = router  # a stream in every way callers use (current: Any)
        return router


@contextlib.contextmanager
def captured() -> Iterator[io.StringIO]:
    """What this thread writes to sys.stderr inside the block, kept in a buffer;
    other threads keep writing to the real stream meanwhile."""
    router = _router()
    buffer = io.StringIO()
    outer = getattr(router.local, "buffer", None)
    router.local.buffer = buffer
    try:
        yield buffer
    finally:
        router.local.buffer = outer
