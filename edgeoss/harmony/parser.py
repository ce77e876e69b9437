"""Generated token ids to events: reasoning, answer, preamble, tool calls.

Never raises on malformed output: it is counted and degrades to answer text.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from edgeoss import spec
from edgeoss.harmony.encoding import encoding
from edgeoss.harmony.render import ToolCall

MAX_HEADER_TOKENS = 64  # a header (role, channel, recipient, content type) is a handful of tokens


@dataclass
class Event:
    """What the parser saw: reasoning, content, a preamble, a tool call, or the end."""

    kind: str  # "reasoning", "content", "preamble", "tool_call", "builtin_call", "builtin_result", "done"
    text: str = ""
    tool_call: ToolCall | None = None
    reason: str = ""  # done: "stop", "tool_calls", "length", "cancel"
    source: Source | None = None  # content: this text is a citation of that page (the browser's)
    logprobs: list[dict[str, Any]] | None = None  # content: its tokens' log-probabilities, when asked for


@dataclass(frozen=True)
class Source:
    """A page the answer cites: where a citation's link points."""

    url: str
    title: str


@dataclass
class Result:
    reasoning: str = ""
    content: str = ""
    preamble: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str = ""
    malformed: int = 0  # tokens the parser could not place; their text went to the answer or was dropped
    reasoning_tokens: int = 0  # generated tokens that were analysis text (usage counts them)
    builtin_calls: list[ToolCall] = field(default_factory=list)  # to tools edgeoss runs (python, browser.*)
    waiting: ToolCall | None = None  # the built-in call the generation ended with (<|call|>): edgeoss answers it


def _call_id() -> str:
    """A call id unique to this call, as OpenAI's are: the server keys what it remembers of a
    call (its reasoning) by it, and a client matches the call's output to it."""
    return "call_" + uuid.uuid4().hex[:24]


class StreamParser:
    """Generated token ids in, events out; never raises on malformed output.

    A tool call is a message whose recipient is `functions.NAME`, on the
    commentary or the analysis channel alike. A message to a tool of a
    namespace in `builtin` (python, browser, an MCP server's) is a built-in
    call, which edgeoss answers itself (tools/loop.py). Any other recipient
    is text, as before tools existed. Analysis text only ever becomes
    reasoning.
    """

    def __init__(self, builtin: Collection[str] = ()) -> None:
        import openai_harmony  # on first use, as in encoding.py (a tenth of a second at startup)

        self._harmony = openai_harmony
        self._parser = openai_harmony.StreamableParser(encoding(), openai_harmony.Role.ASSISTANT)
        self.result = Result()
        self._builtin = frozenset(builtin)
        self._raw = False  # after malformed output: plain text, routed by the last known channel
        self._last_channel = ""
        self._arguments: list[str] = []
        self._recipient = ""
        self._call_channel = ""
        self._calls = 0
        self._header: list[int] = []  # tokens of a header still being read

    def is_call(self, recipient: str) -> bool:
        return recipient.startswith("functions.") or recipient.split(".", 1)[0] in self._builtin

    def _route(self, text: str, channel: str, recipient: str) -> list[Event]:
        if recipient and self.is_call(recipient):
            # Recorded at the header, so a call with an empty body is still a call.
            self._recipient, self._call_channel = recipient, channel
            if text:
                self._arguments.append(text)
            return []
        if not text:
            return []
        if channel == "analysis":
            self.result.reasoning += text
            return [Event("reasoning", text)]
        if channel == "commentary":
            self.result.preamble += text
            return [Event("preamble", text)]
        self.result.content += text
        return [Event("content", text)]

    def _close_message(self) -> list[Event]:
        if not self._recipient:
            return []
        self._calls += 1
        arguments, channel = "".join(self._arguments), self._call_channel
        recipient, self._recipient, self._arguments = self._recipient, "", []
        if not recipient.startswith("functions."):
            call = ToolCall(recipient, arguments, _call_id(), channel)
            self.result.builtin_calls.append(call)
            return [Event("builtin_call", tool_call=call)]
        call = ToolCall(recipient.removeprefix("functions."), arguments, _call_id(), channel)
        self.result.tool_calls.append(call)
        return [Event("tool_call", tool_call=call)]

    def feed(self, token: int) -> list[Event]:
        if token in (spec.RETURN, spec.CALL):
            events = self._close_message()
            last = events[-1] if events else None
            if token == spec.CALL and last is not None and last.kind == "builtin_call":
                self.result.waiting = last.tool_call
            return [*events, *self.finish("stop")]
        if self._raw:
            return self._route_raw(token)
        try:
            self._parser.process(token)
        except self._harmony.HarmonyError:
            self.result.malformed += 1
            self._raw = True
            return self._route_raw(token)
        in_header = self._parser.state == self._harmony.StreamState.HEADER
        self._header = [*self._header, token] if in_header else []
        if len(self._header) > MAX_HEADER_TOKENS:
            # No real header is this long: this is not harmony (a random
            # model's usual output). Show it as text from here on, rather
            # than holding everything back until the end.
            return self._give_up_on_header()
        channel = self._parser.current_channel or ""
        recipient = self._parser.current_recipient or ""
        events = self._route(self._parser.last_content_delta or "", channel, recipient)
        if (
            channel == "analysis"
            and not recipient
            and self._parser.state == self._harmony.StreamState.CONTENT
            and not encoding().is_special_token(token)
        ):
            self.result.reasoning_tokens += 1
        if channel:
            self._last_channel = channel
        if token == spec.END:
            events += self._close_message()
        return events

    def _give_up_on_header(self) -> list[Event]:
        self.result.malformed += 1
        self._raw = True
        text = encoding().decode([t for t in self._header if not encoding().is_special_token(t)])
        self._header = []
        return self._route(text, "analysis" if self._last_channel == "analysis" else "final", "")

    def _route_raw(self, token: int) -> list[Event]:
        if encoding().is_special_token(token):
            return self._close_message() if token == spec.END else []
        text = encoding().decode([token])
        channel = "analysis" if self._last_channel == "analysis" else "final"
        if channel == "analysis":
            self.result.reasoning_tokens += 1
        return self._route(text, channel, "")

    def finish(self, reason: str) -> list[Event]:
        """End of generation: stop id, length, or cancel."""
        if self.result.finish_reason:
            return []
        events = self._close_message() if reason in ("length", "cancel") else []
        if self._header:
            # Output that never completed a message header (a random model's
            # usual output) becomes answer text rather than vanishing.
            events += self._give_up_on_header()
        self.result.finish_reason = "tool_calls" if self.result.tool_calls and reason == "stop" else reason
        return [*events, Event("done", reason=self.result.finish_reason)]
