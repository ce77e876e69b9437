"""How busy other programs keep the CPUs: a measurement taken while they are
is right for the moment but is not a fact to remember about the machine
(the decode thread count, the memory bandwidth)."""

from __future__ import annotations

import time
from typing import Any

import psutil

QUIET_SHARE = 0.10
"""The most of the CPUs other programs may use while thread counts are timed
for the result to be remembered: a loaded machine favours fewer threads."""


class OtherLoad:
    """The share of all CPUs that other processes used during a `with` block."""

    def __enter__(self) -> OtherLoad:
        self.share = 0.0
        self._start = (time.perf_counter(), _busy(psutil.cpu_times()), _own())
        return self

    def __exit__(self, *exc: object) -> None:
        wall0, busy0, own0 = self._start
        wall = time.perf_counter() - wall0
        others = (_busy(psutil.cpu_times()) - busy0) - (_own() - own0)
        # CPU times come in clock ticks (10 ms): over a very short block one stray
        # tick would look like a busy machine, so the block counts as at least 0.25 s.
        self.share = max(0.0, others / (max(wall, 0.25) * (psutil.cpu_count(logical=True) or 1)))


def _busy(t: Any) -> float:
    return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))


def _own() -> float:
    t = psutil.Process().cpu_times()
    return float(t.user + t.system)
