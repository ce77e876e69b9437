"""The harmony format, on openai-harmony with the packaged vocabulary.

openai-harmony downloads o200k_base.tiktoken on first use unless
TIKTOKEN_ENCODINGS_BASE names a folder that holds it. We point it at the
package's own verified copy, so loading never touches the network.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import openai_harmony

from edgeoss import constants, resources, spec
from edgeoss.errors import DataIntegrityError

_env_lock = threading.Lock()


@functools.lru_cache(maxsize=1)
def encoding() -> openai_harmony.HarmonyEncoding:
    """The o200k_harmony encoding (HARMONY_GPT_OSS), loaded fully offline."""
    folder = str(resources.vocab_path().parent)
    with _env_lock:
        # The variable is process-wide; set it only for the load and put back
        # whatever the user had.
        previous = os.environ.get(constants.ENV_TIKTOKEN_ENCODINGS_BASE)
        os.environ[constants.ENV_TIKTOKEN_ENCODINGS_BASE] = folder
        try:
            return openai_harmony.load_harmony_encoding(openai_harmony.HarmonyEncodingName.HARMONY_GPT_OSS)
        except openai_harmony.HarmonyError as exc:
            raise DataIntegrityError(
                f"openai-harmony could not load the packaged vocabulary from {folder}: {exc}",
                hint="reinstall edgeoss; the vocabulary ships with it",
            ) from exc
        finally:
            if previous is None:
                os.environ.pop(constants.ENV_TIKTOKEN_ENCODINGS_BASE, None)
            else:
                os.environ[constants.ENV_TIKTOKEN_ENCODINGS_BASE] = previous


# --- rendering ---------------------------------------------------------------------

EFFORTS = ("low", "medium", "high")
MAX_HEADER_TOKENS = 64  # a header (role, channel, recipient, content type) is a handful of tokens
KNOWLEDGE_CUTOFF = "2024-06"


@dataclass(frozen=True)
class Tool:
    """A function the model may call (the `functions` namespace)."""

    name: str
    description: str = ""
    parameters: dict[str, Any] | None = None


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: str  # JSON text, as the model wrote it
    id: str = ""


@dataclass(frozen=True)
class Turn:
    """One message of a conversation, as the APIs above describe it."""

    role: str  # system, developer, user, assistant, tool
    content: str = ""
    reasoning: str = ""  # assistant: earlier analysis
    tool_calls: tuple[ToolCall, ...] = ()  # assistant
    name: str = ""  # tool: the function whose result this is


@dataclass(frozen=True)
class RenderOptions:
    effort: str = "medium"
    instructions: str = ""  # developer instructions (system/developer turns are appended)
    tools: tuple[Tool, ...] = ()
    response_schema: dict[str, Any] | None = None  # JSON schema for the final answer
    date: str | None = None  # conversation start date, default today
    identity: str = "You are ChatGPT, a large language model trained by OpenAI."


def _system(options: RenderOptions) -> openai_harmony.Message:
    if options.effort not in EFFORTS:
        raise ValueError(f"reasoning effort {options.effort!r}: choose low, medium or high")
    effort = {
        "low": openai_harmony.ReasoningEffort.LOW,
        "medium": openai_harmony.ReasoningEffort.MEDIUM,
        "high": openai_harmony.ReasoningEffort.HIGH,
    }[options.effort]
    content = (
        openai_harmony.SystemContent.new()
        .with_model_identity(options.identity)
        .with_knowledge_cutoff(KNOWLEDGE_CUTOFF)
        .with_conversation_start_date(options.date or _dt.date.today().isoformat())
        .with_reasoning_effort(effort)
    )
    return openai_harmony.Message.from_role_and_content(openai_harmony.Role.SYSTEM, content)


def _developer(options: RenderOptions, extra: list[str]) -> openai_harmony.Message | None:
    instructions = "\n\n".join(part for part in [options.instructions, *extra] if part)
    if options.response_schema is not None:
        schema = json.dumps(options.response_schema, indent=2)
        instructions = (instructions + "\n\n" if instructions else "") + (
            "# Response Formats\n\n## response\n\n" + schema
        )
    if not instructions and not options.tools:
        return None
    content = openai_harmony.DeveloperContent.new()
    if instructions:
        content = content.with_instructions(instructions)
    if options.tools:
        content = content.with_function_tools(
            [
                openai_harmony.ToolDescription.new(
                    t.name, t.description, parameters=t.parameters or {"type": "object", "properties": {}}
                )
                for t in options.tools
            ]
        )
    return openai_harmony.Message.from_role_and_content(openai_harmony.Role.DEVELOPER, content)


def _history(turns: Sequence[Turn]) -> list[openai_harmony.Message]:
    role = openai_harmony.Role
    messages: list[openai_harmony.Message] = []
    for turn in turns:
        if turn.role == "user":
            messages.append(openai_harmony.Message.from_role_and_content(role.USER, turn.content))
        elif turn.role == "assistant":
            if turn.reasoning:
                messages.append(
                    openai_harmony.Message.from_role_and_content(role.ASSISTANT, turn.reasoning).with_channel(
                        "analysis"
                    )
                )
            for call in turn.tool_calls:
                messages.append(
                    openai_harmony.Message.from_role_and_content(role.ASSISTANT, call.arguments)
                    .with_channel("commentary")
                    .with_recipient(f"functions.{call.name}")
                    .with_content_type("<|constrain|>json")
                )
            if turn.content:
                messages.append(
                    openai_harmony.Message.from_role_and_content(role.ASSISTANT, turn.content).with_channel("final")
                )
        elif turn.role == "tool":
            author = openai_harmony.Author.new(role.TOOL, f"functions.{turn.name}")
            messages.append(
                openai_harmony.Message.from_author_and_content(author, turn.content)
                .with_recipient("assistant")
                .with_channel("commentary")
            )
        elif turn.role not in ("system", "developer"):
            raise ValueError(f"unknown role {turn.role!r}")
    return messages


def render(turns: Sequence[Turn], options: RenderOptions | None = None) -> list[int]:
    """Token ids of the conversation, ending with `<|start|>assistant` for the reply.

    System and developer turns from an API become developer instructions (the
    harmony system message is edgeoss's: identity, dates, effort, channels).
    Earlier analysis is dropped once a final answer follows it.
    """
    options = options or RenderOptions()
    extra = [t.content for t in turns if t.role in ("system", "developer") and t.content]
    messages = [_system(options)]
    developer = _developer(options, extra)
    if developer is not None:
        messages.append(developer)
    messages += _history(turns)
    conversation = openai_harmony.Conversation.from_messages(messages)
    return list(encoding().render_conversation_for_completion(conversation, openai_harmony.Role.ASSISTANT))


# --- streaming parse -----------------------------------------------------------------


@dataclass
class Event:
    """What the parser saw: reasoning, content, a preamble, a tool call, or the end."""

    kind: str  # "reasoning", "content", "preamble", "tool_call", "done"
    text: str = ""
    tool_call: ToolCall | None = None
    reason: str = ""  # done: "stop", "tool_calls", "length", "cancel"


@dataclass
class Result:
    reasoning: str = ""
    content: str = ""
    preamble: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str = ""
    malformed: int = 0  # tokens the parser could not place; their text went to the answer or was dropped
    reasoning_tokens: int = 0  # generated tokens that were analysis text (usage counts them)


class StreamParser:
    """Generated token ids in, events out; never raises on malformed output.

    A tool call is a message whose recipient is `functions.NAME`, on the
    commentary or the analysis channel alike. Analysis text only ever
    becomes reasoning.
    """

    def __init__(self) -> None:
        self._parser = openai_harmony.StreamableParser(encoding(), openai_harmony.Role.ASSISTANT)
        self.result = Result()
        self._raw = False  # after malformed output: plain text, routed by the last known channel
        self._last_channel = ""
        self._arguments: list[str] = []
        self._recipient = ""
        self._calls = 0
        self._header: list[int] = []  # tokens of a header still being read

    def _route(self, text: str, channel: str, recipient: str) -> list[Event]:
        if not text:
            return []
        if recipient.startswith("functions."):
            self._recipient = recipient
            self._arguments.append(text)
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
        call = ToolCall(self._recipient.removeprefix("functions."), "".join(self._arguments), f"call_{self._calls}")
        self._recipient, self._arguments = "", []
        self.result.tool_calls.append(call)
        return [Event("tool_call", tool_call=call)]

    def feed(self, token: int) -> list[Event]:
        if token in (spec.RETURN, spec.CALL):
            return [*self._close_message(), *self.finish("stop")]
        if self._raw:
            return self._route_raw(token)
        try:
            self._parser.process(token)
        except openai_harmony.HarmonyError:
            self.result.malformed += 1
            self._raw = True
            return self._route_raw(token)
        in_header = self._parser.state == openai_harmony.StreamState.HEADER
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
            and self._parser.state == openai_harmony.StreamState.CONTENT
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
