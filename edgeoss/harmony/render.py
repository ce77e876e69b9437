"""Conversations to prompt token ids: edgeoss's system message, developer
instructions, function tools, structured output and history, rendered by
openai-harmony."""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from edgeoss.errors import UsageError
from edgeoss.harmony.encoding import encoding

if TYPE_CHECKING:
    import openai_harmony

EFFORTS = ("low", "medium", "high")
KNOWLEDGE_CUTOFF = "2024-06"


def check_effort(effort: str, option: str = "--effort") -> str:
    """`effort` if it is one of EFFORTS, else a usage error naming the choices."""
    if effort not in EFFORTS:
        raise UsageError(f"{option} {effort!r}", hint="low, medium or high")
    return effort


@dataclass(frozen=True)
class Tool:
    """A function the model may call (the `functions` namespace)."""

    name: str
    description: str = ""
    parameters: dict[str, Any] | None = None


@dataclass(frozen=True)
class Namespace:
    """Tools in a namespace of their own (an MCP server's), called as `{name}.{tool}`."""

    name: str
    description: str
    tools: tuple[Tool, ...]


@dataclass(frozen=True)
class ToolCall:
    name: str  # a developer function's name; for a built-in tool, its recipient (python, browser.search)
    arguments: str  # JSON text, as the model wrote it (for python: the code)
    id: str = ""
    channel: str = ""  # where the model made the call: the tool answers on the same channel


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
    builtin_tools: tuple[str, ...] = ()  # gpt-oss's own tools edgeoss runs: "browser", "python"
    namespaces: tuple[Namespace, ...] = ()  # more tools edgeoss runs (MCP servers'), in the developer message


BUILTIN_TOOLS = ("browser", "python")
"""gpt-oss's own tools, in the order the official chat template renders them."""


def _system(options: RenderOptions) -> openai_harmony.Message:
    import openai_harmony  # on first use: see encoding.py

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
    unknown = set(options.builtin_tools) - set(BUILTIN_TOOLS)
    if unknown:
        raise ValueError(f"unknown built-in tools {sorted(unknown)}: gpt-oss has {', '.join(BUILTIN_TOOLS)}")
    # openai-harmony's own tool configs: the text gpt-oss was trained on, token for token.
    if "browser" in options.builtin_tools:
        content = content.with_browser_tool()
    if "python" in options.builtin_tools:
        content = content.with_python_tool()
    return openai_harmony.Message.from_role_and_content(openai_harmony.Role.SYSTEM, content)


def tool_reply(author: str, text: str, channel: str) -> list[int]:
    """Token ids of a built-in tool's answer to the assistant (author: python,
    browser.search, ...), on the channel of its call, then `<|start|>assistant`
    for the model to go on: appended to a prompt that ended with the call."""
    import openai_harmony  # on first use: see encoding.py

    role = openai_harmony.Role
    message = (
        openai_harmony.Message.from_author_and_content(openai_harmony.Author.new(role.TOOL, author), text)
        .with_recipient("assistant")
        .with_channel(channel or "analysis")
    )
    return [*encoding().render(message), *ASSISTANT_START]


ASSISTANT_START = (200006, 173781)
"""`<|start|>assistant`: the tokens render() ends a prompt with."""


def _developer(options: RenderOptions, extra: list[str]) -> openai_harmony.Message | None:
    import openai_harmony  # on first use: see encoding.py

    instructions = "\n\n".join(part for part in [options.instructions, *extra] if part)
    if options.response_schema is not None:
        schema = json.dumps(options.response_schema, indent=2)
        instructions = (instructions + "\n\n" if instructions else "") + (
            "# Response Formats\n\n## response\n\n" + schema
        )
    if not instructions and not options.tools and not options.namespaces:
        return None
    content = openai_harmony.DeveloperContent.new()
    if instructions:
        content = content.with_instructions(instructions)
    for namespace in options.namespaces:
        content = content.with_tools(
            openai_harmony.ToolNamespaceConfig(
                name=namespace.name,
                description=namespace.description,
                tools=[_description(t) for t in namespace.tools],
            )
        )
    if options.tools:
        content = content.with_function_tools([_description(t) for t in options.tools])
    return openai_harmony.Message.from_role_and_content(openai_harmony.Role.DEVELOPER, content)


def _description(tool: Tool) -> openai_harmony.ToolDescription:
    import openai_harmony  # on first use: see encoding.py

    parameters = tool.parameters or {"type": "object", "properties": {}}
    return openai_harmony.ToolDescription.new(tool.name, tool.description, parameters=parameters)


def _recipient(name: str) -> str:
    """A developer function is `functions.NAME`; a tool of another namespace (an MCP
    server's, `server.tool`) keeps its own (function names have no dot)."""
    return name if "." in name else f"functions.{name}"


def _history(turns: Sequence[Turn]) -> list[openai_harmony.Message]:
    import openai_harmony  # on first use: see encoding.py

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
                    .with_channel(call.channel or "commentary")
                    .with_recipient(_recipient(call.name))
                    .with_content_type("<|constrain|>json")
                )
            if turn.content:
                messages.append(
                    openai_harmony.Message.from_role_and_content(role.ASSISTANT, turn.content).with_channel("final")
                )
        elif turn.role == "tool":
            author = openai_harmony.Author.new(role.TOOL, _recipient(turn.name))
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
    import openai_harmony  # on first use: see encoding.py

    options = options or RenderOptions()
    extra = [t.content for t in turns if t.role in ("system", "developer") and t.content]
    messages = [_system(options)]
    developer = _developer(options, extra)
    if developer is not None:
        messages.append(developer)
    messages += _history(turns)
    conversation = openai_harmony.Conversation.from_messages(messages)
    return list(encoding().render_conversation_for_completion(conversation, openai_harmony.Role.ASSISTANT))
