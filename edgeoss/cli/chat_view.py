"""How one reply appears in `edgeoss chat`.

The answer goes to stdout; the reasoning goes to stderr, dimmed, so that a
pipe of stdout holds only answers. Reasoning has three modes (/reasoning):

- fold (the default): while the model reasons, one live line counts its
  tokens; when the answer starts, it folds to a single dim line, and /show
  prints the whole reasoning of the last reply;
- show: the reasoning streams in full, dimmed;
- hide: nothing of it is shown (/show still works).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

from rich.console import Console

from edgeoss.errors import UsageError

MODES = ("fold", "show", "hide")


def check_mode(mode: str) -> str:
    """`mode` if it is one of MODES, else a usage error naming the choices."""
    if mode not in MODES:
        raise UsageError(f"--reasoning {mode!r}", hint=f"choose one of {', '.join(MODES)}")
    return mode


class ReplyView:
    def __init__(
        self,
        mode: str,
        err: Console,
        out: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"reasoning mode {mode!r}; choose one of {', '.join(MODES)}")
        self.mode = mode
        self.err = err
        self.out = out or sys.stdout
        self.clock = clock
        self.reasoning_text = ""
        self.reasoning_tokens = 0
        self._started = 0.0
        self._elapsed = 0.0
        self._open = False  # reasoning is streaming and not yet closed
        self._live = False  # a transient status line is on screen
        self.tool_text = ""  # the tools' calls and answers in this reply, for /show
        self._pending = ""  # fold mode: the call's line, printed with its answer

    def reasoning(self, text: str, tokens: int) -> None:
        """More reasoning text; `tokens`: the reasoning tokens of this reply so far."""
        if not self._open:
            self._open = True
            self._started = self.clock()
        self.reasoning_text += text
        self.reasoning_tokens = tokens
        if self.mode == "show":
            self.err.print(text, end="", style="dim", highlight=False, markup=False)
        elif self.mode == "fold" and self.err.is_terminal:
            # Overwrite one line in place; only on a terminal, where \r means something.
            self.err.file.write(f"\r\x1b[2mthinking… {tokens} tokens\x1b[0m\x1b[K")
            self.err.file.flush()
            self._live = True

    def tool(self, kind: str, name: str, text: str) -> None:
        """A built-in tool's call (`kind` builtin_call: the code) or answer (builtin_result),
        folded like the reasoning: one dim line per call in fold mode, in full in show mode."""
        self.tool_text += f"[{name}]\n{text}\n" if kind == "builtin_call" else f"[{name} answered]\n{text}\n"
        if self.mode == "hide":
            return
        if self._live:
            self.err.file.write("\r\x1b[K")
            self._live = False
        if self.mode == "show":
            label = f"[{name}]" if kind == "builtin_call" else f"[{name} answered]"
            self.err.print(f"\n{label}\n{text.rstrip()}", style="dim", highlight=False, markup=False)
        elif kind == "builtin_call":
            self._pending = f"▸ {name}: {_first_line(text)}"
        else:
            self.err.print(f"{self._pending} → {_first_line(text)}", style="dim", highlight=False, markup=False)

    def answer(self, text: str) -> None:
        self._close()
        self.out.write(text)
        self.out.flush()

    def finish(self, stopped: bool = False) -> None:
        self._close()
        if stopped:
            self.err.print("\n[stopped]", highlight=False, markup=False)
        self.out.write("\n")
        self.out.flush()

    def folded_line(self) -> str:
        return f"▸ reasoned for {self._elapsed:.1f} s, {self.reasoning_tokens} tokens (/show to expand)"

    def _close(self) -> None:
        if not self._open:
            return
        self._open = False
        self._elapsed = self.clock() - self._started
        if self._live:
            self.err.file.write("\r\x1b[K")
            self._live = False
        if self.mode == "fold":
            self.err.print(self.folded_line(), style="dim", highlight=False, markup=False)
        elif self.mode == "show":
            self.err.print()  # the answer starts on its own line


def _first_line(text: str, width: int = 60) -> str:
    line = next((part for part in text.strip().splitlines() if part.strip()), "")
    return line if len(line) <= width else line[: width - 1] + "…"
