"""The tool loop, below every API: when the model calls a tool edgeoss runs
(python today), edgeoss runs it, puts the tool's answer into the prompt in
harmony (a message from the tool to the assistant, on the channel of the
call), and lets the model go on, until it answers, calls a developer
function (returned to the client, as without tools), or reaches a bound:
tool calls per request, the request's token budget and time, the context.

The next prompt is the last one plus the generated ids (ending with
`<|call|>`, as harmony renders a call in history) plus the tool's answer and
`<|start|>assistant`: token for token what render() would make of the whole
conversation, and a prefix the engine's KV cache already holds.

The events are the generation's own, plus `builtin_call` (what the model
sent to the tool) and `builtin_result` (what the tool answered), which each
API shows in its own way; one `done` ends them all.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import time
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field

from edgeoss import harmony
from edgeoss.engines.base import LogitsProcessor, QueuedEngine, Timings
from edgeoss.errors import ToolUnavailableError, UsageError
from edgeoss.runtime.reply import Reply
from edgeoss.server import generation
from edgeoss.tools import sandbox
from edgeoss.tools.python_tool import Limits, Sessions

MAX_CALLS = 8
"""Built-in tool calls one request may make before the model is told to answer."""

MAX_RESULT_CHARS = 16_000
"""The most of one tool answer that enters the prompt (the rest is cut, with a note)."""


@dataclass
class Toolbox:
    """The tools this server (or this chat) runs for the model: none unless turned on."""

    python: Sessions | None = None
    max_calls: int = MAX_CALLS

    @property
    def builtin(self) -> tuple[str, ...]:
        """gpt-oss's own tools that are on, for the system message (RenderOptions.builtin_tools)."""
        return ("python",) if self.python is not None else ()

    @property
    def namespaces(self) -> frozenset[str]:
        """Recipients whose calls edgeoss answers (the parser's `builtin`)."""
        return frozenset(self.builtin)

    def __bool__(self) -> bool:
        return bool(self.namespaces)

    def only(self, names: Sequence[str]) -> Toolbox:
        """This toolbox with only `names` on (one request's choice); the state is shared."""
        return Toolbox(python=self.python if "python" in names else None, max_calls=self.max_calls)

    def run(self, call: harmony.ToolCall, conversation: str) -> str:
        """The tool's answer to `call`, as text for the model (blocking: run it in a thread)."""
        if call.name == "python" and self.python is not None:
            return self.python.get(conversation).run(call.arguments).text()
        return f"there is no tool {call.name!r} here; the tools are: {', '.join(sorted(self.namespaces)) or 'none'}"

    def close(self) -> None:
        if self.python is not None:
            self.python.close()


TOOL_NAMES = ("python",)
"""What `edgeoss serve --tools` and `edgeoss chat --tools` take."""


def parse_tools(text: str) -> tuple[str, ...]:
    """`--tools python,...` as names, each checked to run here: a usage error for an
    unknown name, ToolUnavailableError (with the fix) for python without a sandbox."""
    names = tuple(dict.fromkeys(n.strip().lower() for n in text.split(",") if n.strip()))
    toolbox_of(names)
    if "python" in names:
        status = sandbox.status()
        if not status.available:
            raise ToolUnavailableError(f"the python tool cannot run here: {status.detail}", hint=status.fix)
    return names


def toolbox_of(names: Sequence[str], timeout_s: float = Limits.timeout_s) -> Toolbox:
    """The tools named, turned on; a usage error for a name edgeoss has no tool for."""
    unknown = sorted(set(names) - set(TOOL_NAMES))
    if unknown:
        raise UsageError(f"no tool named {', '.join(unknown)}", hint=f"the tools are: {', '.join(TOOL_NAMES)}")
    python = Sessions(Limits(timeout_s=timeout_s)) if "python" in names else None
    return Toolbox(python=python)


def conversation_key(turns: Sequence[harmony.Turn]) -> str:
    """Which conversation a request continues, for the tools' state (a python session):
    the same instructions and first user message, resent with each request, name it."""
    opening: list[str] = []
    for turn in turns:
        if turn.role in ("system", "developer"):
            opening.append(turn.content)
        elif turn.role == "user":
            opening.append(turn.content)
            break
    return hashlib.sha256(json.dumps(opening).encode()).hexdigest()[:24]


def _clipped(text: str) -> str:
    if len(text) <= MAX_RESULT_CHARS:
        return text
    return text[:MAX_RESULT_CHARS] + f"\n[the tool's answer was cut: {len(text) - MAX_RESULT_CHARS:,} more characters]"


def _merge(total: Reply, part: Reply, initial_prompt: int) -> None:
    """Fold one round into the request's reply: reasoning and answers add up, the
    finish is the last round's; usage counts every generated token once."""
    r, p = total.result, part.result
    r.reasoning += p.reasoning
    r.preamble += p.preamble
    r.content += p.content
    r.tool_calls += p.tool_calls
    r.builtin_calls += p.builtin_calls
    r.malformed += p.malformed
    r.reasoning_tokens += p.reasoning_tokens
    r.finish_reason = p.finish_reason
    r.waiting = p.waiting
    t, q = total.timings, part.timings
    first = t.generated_tokens == 0
    total.timings = Timings(
        prompt_tokens=t.prompt_tokens + q.prompt_tokens,
        cached_tokens=t.cached_tokens + q.cached_tokens,
        generated_tokens=t.generated_tokens + q.generated_tokens,
        time_to_first_token_s=q.time_to_first_token_s if first else t.time_to_first_token_s,
        generation_s=t.generation_s + q.generation_s,
        stop_reason=q.stop_reason,
        token_times_s=[*t.token_times_s, *q.token_times_s],
    )
    total.tokens += part.tokens
    total.timed_out = total.timed_out or part.timed_out
    total.prompt_tokens = initial_prompt


@dataclass
class _Budget:
    tokens: int
    deadline: float | None
    calls: int = 0
    spent: list[str] = field(default_factory=list)

    def left_s(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()


async def events(
    engine: QueuedEngine,
    prompt: list[int],
    ask: generation.Ask,
    outcome: Reply,
    processor: LogitsProcessor | None,
    toolbox: Toolbox,
    conversation: str,
) -> AsyncGenerator[harmony.Event, None]:
    """generation.events() with edgeoss answering the model's built-in tool calls."""
    outcome.result = harmony.Result()
    initial = len(prompt)
    budget = _Budget(ask.sampling.max_tokens, time.monotonic() + ask.timeout_s if ask.timeout_s else None)
    reason = "length"
    while True:
        left = budget.left_s()
        if budget.tokens <= 0 or (left is not None and left <= 0):
            outcome.timed_out = outcome.timed_out or (left is not None and left <= 0)
            reason = "length"
            break
        round_ask = dataclasses.replace(
            ask, sampling=dataclasses.replace(ask.sampling, max_tokens=budget.tokens), timeout_s=left
        )
        part = Reply()
        async for event in generation.events(engine, prompt, round_ask, part, processor, toolbox.namespaces):
            if event.kind != "done":
                yield event
            else:
                reason = event.reason
        _merge(outcome, part, initial)
        budget.tokens -= part.timings.generated_tokens
        call = part.result.waiting
        if call is None:
            break
        budget.calls += 1
        if budget.calls > toolbox.max_calls:
            answer = (
                f"the limit of {toolbox.max_calls} tool calls for this request is reached; "
                "answer now with what you have"
            )
        else:
            answer = _clipped(await asyncio.to_thread(toolbox.run, call, conversation))
        outcome.tool_activity.append({"tool": call.name, "input": call.arguments, "output": answer})
        yield harmony.Event("builtin_result", answer, tool_call=call)
        if budget.calls > toolbox.max_calls + 1:
            reason = "length"  # told to answer, it called again: the request ends here
            break
        prompt = [*prompt, *part.tokens, *harmony.tool_reply(call.name, answer, call.channel)]
        if len(prompt) >= engine.context_length:
            reason = "length"
            break
    outcome.result.waiting = None
    outcome.result.finish_reason = reason
    yield harmony.Event("done", reason=reason)


def activity_text(event: harmony.Event) -> str:
    """A built-in call or its answer as reasoning text, for the APIs that have no item
    for it (Chat Completions, Ollama): shown in the reasoning, never in the answer."""
    call = event.tool_call
    name = call.name if call is not None else "tool"
    if event.kind == "builtin_call" and call is not None:
        return f"\n\n[{name}]\n{call.arguments.rstrip()}\n"
    return f"[{name} answered]\n{event.text.rstrip()}\n\n"
