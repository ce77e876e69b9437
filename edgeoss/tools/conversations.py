"""One tool state per conversation (a python interpreter, a browser's pages),
ended when idle too long, and bounded in number: the least recently used is
ended to make room for a new one."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar


class State(Protocol):
    def close(self) -> None: ...


T = TypeVar("T", bound=State)


class PerConversation(Generic[T]):
    def __init__(self, make: Callable[[], T], max_live: int, idle_s: float) -> None:
        self.make, self.max_live, self.idle_s = make, max_live, idle_s
        self._states: dict[str, tuple[T, float]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> T:
        """The state of conversation `key`, made if it has none (or had one that expired)."""
        with self._lock:
            now = time.monotonic()
            ended = [k for k, (_, used) in self._states.items() if now - used > self.idle_s]
            for k in ended:
                self._states.pop(k)[0].close()
            found = self._states.get(key)
            state = found[0] if found is not None else None
            if state is None:
                while len(self._states) >= self.max_live:
                    oldest = min(self._states, key=lambda k: self._states[k][1])
                    self._states.pop(oldest)[0].close()
                state = self.make()
            self._states[key] = (state, now)
            return state

    def peek(self, key: str) -> T | None:
        """The state of conversation `key` if it has one (nothing is made or ended)."""
        with self._lock:
            found = self._states.get(key)
            return found[0] if found is not None else None

    def __len__(self) -> int:
        return len(self._states)

    def close(self) -> None:
        with self._lock:
            for state, _ in self._states.values():
                state.close()
            self._states.clear()
