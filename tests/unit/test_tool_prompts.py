"""What the model is shown about edgeoss's tools, token for token.

- The system message with python and browser on is what openai-harmony makes
  of its own tool configs, and what the official chat template renders with
  `builtin_tools=["browser", "python"]`.
- After a built-in call, the tool loop's next prompt is exactly what
  openai-harmony renders for the whole conversation so far (the call, the
  tool's message on the call's channel), ending with `<|start|>assistant`.

The engine here is a test double that plays a fixed reply per round and
records the prompts it is given; the tool is a test double too (a fixed answer).
"""

from __future__ import annotations

import asyncio
import datetime
import json
import threading
from collections.abc import Collection, Sequence

import jinja2
import openai_harmony as oh
import pytest

from edgeoss import harmony, resources, spec
from edgeoss.engines.base import Emit, LogitsProcessor, Sampling, Timings
from edgeoss.runtime.reply import Reply
from edgeoss.server.generation import Ask
from edgeoss.tools import loop

DATE = "2026-01-05"


def _template(**kwargs: object) -> str:
    """The official chat template (packaged, sha256-checked), rendered as transformers does."""
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)

    def raise_exception(message: str) -> None:
        raise ValueError(message)

    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.date.fromisoformat(DATE).strftime(fmt)
    env.filters["tojson"] = lambda value, indent=None: json.dumps(value, ensure_ascii=False, indent=indent)
    return env.from_string(resources.chat_template()).render(**kwargs)


@pytest.mark.parametrize("tools", [("python",), ("browser",), ("browser", "python")])
def test_the_system_message_is_openai_harmonys_and_the_templates(tools: tuple[str, ...]) -> None:
    ours = harmony.render([harmony.Turn("user", "Hi")], harmony.RenderOptions(builtin_tools=tools, date=DATE))
    content = (
        oh.SystemContent.new()
        .with_knowledge_cutoff(harmony.KNOWLEDGE_CUTOFF)
        .with_conversation_start_date(DATE)
        .with_reasoning_effort(oh.ReasoningEffort.MEDIUM)
    )
    if "browser" in tools:
        content = content.with_browser_tool()
    if "python" in tools:
        content = content.with_python_tool()
    conversation = oh.Conversation.from_messages(
        [
            oh.Message.from_role_and_content(oh.Role.SYSTEM, content),
            oh.Message.from_role_and_content(oh.Role.USER, "Hi"),
        ]
    )
    reference = harmony.encoding().render_conversation_for_completion(conversation, oh.Role.ASSISTANT)
    assert ours == list(reference)
    text = _template(
        messages=[{"role": "user", "content": "Hi"}],
        builtin_tools=list(tools),
        add_generation_prompt=True,
        reasoning_effort="medium",
    )
    assert harmony.encoding().encode(text, allowed_special="all") == ours


class ScriptedEngine:
    """Test double of the server's engine: plays one fixed reply per round and records each prompt."""

    name = "scripted"
    context_length = 8192
    parallel = 1
    placement = "test"

    def __init__(self, rounds: Sequence[str]) -> None:
        self.rounds = [harmony.encoding().encode(text, allowed_special="all") for text in rounds]
        self.prompts: list[list[int]] = []
        self.last_timings = Timings()

    def submit(
        self,
        prompt: Sequence[int],
        sampling: Sampling,
        emit: Emit,
        stop: Collection[int] = (),
        cancel: threading.Event | None = None,
        logits_processor: LogitsProcessor | None = None,
        timings: Timings | None = None,
    ) -> None:
        self.prompts.append(list(prompt))
        for i, token in enumerate(self.rounds[len(self.prompts) - 1]):
            if timings is not None:
                timings.token(0.001 * (i + 1))
            emit(token)
        if timings is not None:
            timings.stop_reason = "stop"
        emit(None)

    def close(self) -> None:
        pass


class FixedTools(loop.Toolbox):
    """Test double of the toolbox: python answers a fixed text."""

    @property
    def builtin(self) -> tuple[str, ...]:
        return ("python",)

    def run(self, call: harmony.ToolCall, conversation: str) -> str:
        return "42"


CALL = (
    "<|channel|>analysis<|message|>Compute it.<|end|>"
    "<|start|>assistant to=python<|channel|>analysis code<|message|>6 * 7<|call|>"
)
ANSWER = "<|channel|>final<|message|>42.<|return|>"


def _run(engine: ScriptedEngine, toolbox: loop.Toolbox) -> tuple[Reply, list[harmony.Event]]:
    options = harmony.RenderOptions(builtin_tools=toolbox.builtin, date=DATE)
    turns = [harmony.Turn("user", "What is 6 times 7?")]
    ask = Ask(turns, options, Sampling(max_tokens=500))
    prompt = harmony.render(turns, options)
    outcome = Reply()

    async def collect() -> list[harmony.Event]:
        return [e async for e in loop.events(engine, prompt, ask, outcome, None, toolbox, "c")]  # type: ignore[arg-type]

    return outcome, asyncio.run(collect())


def test_the_next_prompt_is_the_whole_conversation_as_harmony_renders_it() -> None:
    engine = ScriptedEngine([CALL, ANSWER])
    outcome, events = _run(engine, FixedTools())
    assert outcome.result.content == "42." and outcome.result.finish_reason == "stop"
    assert [e.kind for e in events if e.kind.startswith("builtin")] == ["builtin_call", "builtin_result"]
    content = (
        oh.SystemContent.new()
        .with_knowledge_cutoff(harmony.KNOWLEDGE_CUTOFF)
        .with_conversation_start_date(DATE)
        .with_reasoning_effort(oh.ReasoningEffort.MEDIUM)
        .with_python_tool()
    )
    messages = [
        oh.Message.from_role_and_content(oh.Role.SYSTEM, content),
        oh.Message.from_role_and_content(oh.Role.USER, "What is 6 times 7?"),
        oh.Message.from_role_and_content(oh.Role.ASSISTANT, "Compute it.").with_channel("analysis"),
        oh.Message.from_role_and_content(oh.Role.ASSISTANT, "6 * 7")
        .with_channel("analysis")
        .with_recipient("python")
        .with_content_type("code"),
        oh.Message.from_author_and_content(oh.Author.new(oh.Role.TOOL, "python"), "42")
        .with_recipient("assistant")
        .with_channel("analysis"),
    ]
    reference = harmony.encoding().render_conversation_for_completion(
        oh.Conversation.from_messages(messages), oh.Role.ASSISTANT
    )
    assert engine.prompts[1] == list(reference)
    assert engine.prompts[1][: len(engine.prompts[0])] == engine.prompts[0]  # a prefix the KV cache holds
    assert outcome.usage()["completion_tokens"] == len(harmony.encoding().encode(CALL + ANSWER, allowed_special="all"))


def test_without_tools_a_call_to_python_is_not_answered() -> None:
    """A server without tools answers no call: the message stays text, as before tools existed."""
    engine = ScriptedEngine([CALL])
    outcome, events = _run(engine, loop.Toolbox())
    assert len(engine.prompts) == 1 and not any(e.kind.startswith("builtin") for e in events)
    assert spec.CALL in outcome.tokens
