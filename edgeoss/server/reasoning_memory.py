"""The reasoning behind each tool call the server issued, kept for the follow-up.

Harmony wants the analysis that led to a call back in the next request (the
model reads its own chain of thought up to the call; only analysis before an
earlier final answer is dropped). Most clients drop it: the openai SDK's
Chat Completions users send back `tool_calls` without `reasoning_content`.
So the server remembers, for each call id it handed out, the reasoning of
that turn, and puts it back into an assistant turn that comes back with
those ids and no reasoning of its own. A client that sends reasoning itself
wins. Entries belong to the API key that made the request (a hash of it), so
one client never receives another's reasoning; the memory is bounded in
entries and in characters, the oldest going first.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence

from edgeoss import harmony

MAX_ENTRIES = 4096
"""Call ids remembered at once (a tool-call turn is one entry per call)."""
MAX_CHARS = 32 << 20
"""Reasoning characters kept in all (the same text is shared by a turn's calls, counted once each)."""


def owner_of(key: str) -> str:
    """Whose entries: a hash of the API key the request presented ("" with none)."""
    return hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()[:32] if key else ""


class ReasoningMemory:
    def __init__(self, max_entries: int = MAX_ENTRIES, max_chars: int = MAX_CHARS) -> None:
        self.max_entries, self.max_chars = max_entries, max_chars
        self._entries: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._chars = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def remember(self, owner: str, calls: Iterable[harmony.ToolCall], reasoning: str) -> None:
        """The reasoning of a turn that ended in `calls` (nothing when there was none)."""
        if not reasoning or len(reasoning) > self.max_chars:
            return
        with self._lock:
            for call in calls:
                if not call.id:
                    continue
                key = (owner, call.id)
                old = self._entries.pop(key, None)
                self._chars -= len(old) if old is not None else 0
                self._entries[key] = reasoning
                self._chars += len(reasoning)
            while self._entries and (len(self._entries) > self.max_entries or self._chars > self.max_chars):
                _, dropped = self._entries.popitem(last=False)
                self._chars -= len(dropped)

    def fill(self, owner: str, turns: Sequence[harmony.Turn]) -> list[harmony.Turn]:
        """`turns` with the remembered reasoning put back into each assistant turn that has
        calls this server issued and no reasoning of its own."""
        out = list(turns)
        with self._lock:
            for i, turn in enumerate(out):
                if turn.role != "assistant" or turn.reasoning or not turn.tool_calls:
                    continue
                found = next((r for c in turn.tool_calls if (r := self._entries.get((owner, c.id)))), None)
                if found is not None:
                    out[i] = dataclasses.replace(turn, reasoning=found)
        return out
