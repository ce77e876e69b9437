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
import threading
import time
from collections.abc import AsyncGenerator, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from edgeoss import harmony
from edgeoss.engines.base import Engine, LogitsProcessor, QueuedEngine, Sampling, Timings
from edgeoss.errors import ToolUnavailableError, UsageError
from edgeoss.runtime.reply import Reply, prompt_for, stream_ids
from edgeoss.runtime.reply import stream as plain_stream
from edgeoss.server import generation
from edgeoss.tools import TOOL_NAMES, ToolSettings, sandbox
from edgeoss.tools.citations import Citations
from edgeoss.tools.mcp_tools import McpHub
from edgeoss.tools.python_tool import Limits, Sessions

if TYPE_CHECKING:
    from edgeoss.tools.browser import Browsers

MAX_CALLS = 8
"""Built-in tool calls one request may make before the model is told to answer."""

MAX_RESULT_CHARS = 16_000
"""The most of one tool answer that enters the prompt (the rest is cut, with a note)."""


@dataclass
class Toolbox:
    """The tools this server (or this chat) runs for the model: none unless turned on."""

    python: Sessions | None = None
    browser: Browsers | None = None
    mcp: McpHub | None = None
    mcp_servers: frozenset[str] | None = None  # the MCP servers on for this request (None: all)
    approvals: bool = False  # a call that needs approval is asked of the user (Responses), not refused
    max_calls: int = MAX_CALLS

    @property
    def builtin(self) -> tuple[str, ...]:
        """gpt-oss's own tools that are on, for the system message (RenderOptions.builtin_tools),
        in the order the official template renders them."""
        on = {"python": self.python is not None, "browser": self.browser is not None}
        return tuple(name for name in harmony.BUILTIN_TOOLS if on[name])

    def mcp_namespaces(self) -> tuple[harmony.Namespace, ...]:
        """The MCP servers' tools this request offers, for the developer message."""
        if self.mcp is None:
            return ()
        return tuple(n for n in self.mcp.namespaces() if self.mcp_servers is None or n.name in self.mcp_servers)

    @property
    def namespaces(self) -> frozenset[str]:
        """Recipients whose calls edgeoss answers (the parser's `builtin`)."""
        return frozenset(self.builtin) | {n.name for n in self.mcp_namespaces()}

    def __bool__(self) -> bool:
        return bool(self.namespaces)

    def only(self, names: Sequence[str], mcp_servers: Sequence[str] | None = None, approvals: bool = False) -> Toolbox:
        """This toolbox with only `names` on, and only `mcp_servers` (None: all) of its MCP
        servers (one request's choice); the state is shared."""
        return Toolbox(
            python=self.python if "python" in names else None,
            browser=self.browser if "browser" in names else None,
            mcp=self.mcp,
            mcp_servers=frozenset(mcp_servers) if mcp_servers is not None else self.mcp_servers,
            approvals=approvals,
            max_calls=self.max_calls,
        )

    def needs_approval(self, call: harmony.ToolCall) -> bool:
        """A call to an MCP server configured with approval: always."""
        namespace = call.name.partition(".")[0]
        return self.mcp is not None and namespace in self.namespaces and self.mcp.needs_approval(namespace)

    def asks_approval(self, call: harmony.ToolCall) -> bool:
        """The call waits for the user's yes, which this API can ask for (Responses)."""
        return self.approvals and self.needs_approval(call)

    def render_options(self, options: harmony.RenderOptions) -> harmony.RenderOptions:
        """`options` with these tools in the prompt: gpt-oss's own in the system message,
        the MCP servers' in the developer message."""
        return dataclasses.replace(options, builtin_tools=self.builtin, namespaces=self.mcp_namespaces())

    def run(self, call: harmony.ToolCall, conversation: str) -> str:
        """The tool's answer to `call`, as text for the model (blocking: run it in a thread)."""
        namespace, _, function = call.name.partition(".")
        if namespace == "python" and not function and self.python is not None:
            return self.python.get(conversation).run(call.arguments).text()
        if namespace == "browser" and self.browser is not None:
            return self.browser.get(conversation).call(function, call.arguments)
        if self.mcp is not None and namespace in self.namespaces and function:
            return self.mcp.call(namespace, function, call.arguments)
        return f"there is no tool {call.name!r} here; the tools are: {', '.join(sorted(self.namespaces)) or 'none'}"

    def citations(self, conversation: str) -> Citations | None:
        """The answer's citation rewriter, where the browser is on (its pages are what is cited)."""
        browser = self.browser
        if browser is None:
            return None

        def lookup(cursor: int, line: int | None) -> harmony.Source | None:
            session = browser.peek(conversation)
            return session.source(cursor, line) if session is not None else None

        return Citations(lookup)

    def close(self) -> None:
        if self.python is not None:
            self.python.close()
        if self.browser is not None:
            self.browser.close()
        if self.mcp is not None:
            self.mcp.close()


def parse_tools(text: str, settings: ToolSettings | None = None) -> tuple[str, ...]:
    """`--tools python,browser` as names, each checked to run here: a usage error for an
    unknown name or a bad search URL, ToolUnavailableError (with the fix) for python
    without a sandbox."""
    names = tuple(dict.fromkeys(n.strip().lower() for n in text.split(",") if n.strip()))
    toolbox_of(names, settings).close()
    if "python" in names:
        status = sandbox.status()
        if not status.available:
            raise ToolUnavailableError(f"the python tool cannot run here: {status.detail}", hint=status.fix)
    return names


def toolbox_of(names: Sequence[str], settings: ToolSettings | None = None, mcp: McpHub | None = None) -> Toolbox:
    """The tools named, turned on; a usage error for a name edgeoss has no tool for."""
    settings = settings or ToolSettings()
    unknown = sorted(set(names) - set(TOOL_NAMES))
    if unknown:
        raise UsageError(f"no tool named {', '.join(unknown)}", hint=f"the tools are: {', '.join(TOOL_NAMES)}")
    python = Sessions(Limits(timeout_s=settings.python_timeout_s)) if "python" in names else None
    browser = None
    if "browser" in names:
        # Here, not at the top: the page extractor's imports (BeautifulSoup, an HTTP
        # client) cost a tenth of a second on every start, tools on or off.
        from edgeoss.tools import web
        from edgeoss.tools.browser import Browsers, search_backend

        policy = web.Policy(allow_private=settings.browser_allow_private)
        try:
            search = search_backend(settings.browser_search, policy)
        except web.FetchError as exc:
            raise UsageError(f"--browser-search: {exc}", hint="give a SearXNG URL (http or https), or ddgs") from None
        browser = Browsers(search, policy)
    return Toolbox(python=python, browser=browser, mcp=mcp)


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


class _Rounds:
    """What the server's and the CLI's loops share: the request's budgets (tokens, time,
    calls), each round folded into the reply, the tool's answer, the next prompt."""

    def __init__(
        self,
        prompt: list[int],
        ask_tokens: int,
        timeout_s: float | None,
        outcome: Reply,
        toolbox: Toolbox,
        context_length: int,
    ) -> None:
        self.prompt, self.outcome, self.toolbox, self.context_length = prompt, outcome, toolbox, context_length
        self.initial = len(prompt)
        self.tokens = ask_tokens
        self.deadline = time.monotonic() + timeout_s if timeout_s else None
        self.calls = 0
        self.reason = "length"
        self.cite: Citations | None = None
        outcome.result = harmony.Result()

    def shown(self, event: harmony.Event) -> Iterator[harmony.Event]:
        """The event as the client sees it: the answer's citations made into links."""
        if self.cite is None:
            yield event
        elif event.kind == "content":
            yield from self.cite.feed(event.text)
        else:
            yield from self.cite.finish()  # a citation never spans another event
            yield event

    def budget(self) -> tuple[int, float | None] | None:
        """(tokens, seconds) the next round may use; None when the request has spent them."""
        left = None if self.deadline is None else self.deadline - time.monotonic()
        if self.tokens <= 0 or (left is not None and left <= 0):
            self.outcome.timed_out = self.outcome.timed_out or (left is not None and left <= 0)
            self.reason = "length"
            return None
        return self.tokens, left

    def ended(self, part: Reply, reason: str) -> harmony.ToolCall | None:
        """Fold a finished round in; the built-in call it ended with, if edgeoss is to answer one."""
        _merge(self.outcome, part, self.initial)
        self.tokens -= part.timings.generated_tokens
        self.reason = reason
        return part.result.waiting

    def answer(self, call: harmony.ToolCall, conversation: str) -> str:
        """The tool's answer (blocking), or, past the bound, the word to stop calling."""
        self.calls += 1
        if self.toolbox.needs_approval(call):  # and this API cannot ask (events() asks where it can)
            return (
                f"{call.name} runs only with the user's approval of each call, which this client cannot give "
                "(the Responses API can); edgeoss did not run it"
            )
        if self.calls > self.toolbox.max_calls:
            limit = self.toolbox.max_calls
            return f"the limit of {limit} tool calls for this request is reached; answer now with what you have"
        return _clipped(self.toolbox.run(call, conversation))

    def answered(self, call: harmony.ToolCall, answer: str, part: Reply) -> tuple[harmony.Event, bool]:
        """The answer's event, and whether the model goes on (a next prompt that fits)."""
        self.outcome.tool_activity.append({"tool": call.name, "input": call.arguments, "output": answer})
        event = harmony.Event("builtin_result", answer, tool_call=call)
        if self.calls > self.toolbox.max_calls + 1:
            self.reason = "length"  # told to answer, it called again: the request ends here
            return event, False
        self.prompt = [*self.prompt, *part.tokens, *harmony.tool_reply(call.name, answer, call.channel)]
        if len(self.prompt) >= self.context_length:
            self.reason = "length"
            return event, False
        return event, True

    def done(self) -> list[harmony.Event]:
        """The held end of the answer, and the end."""
        held = list(self.cite.finish()) if self.cite is not None else []
        if self.cite is not None and self.cite.found:
            self.outcome.result.content = self.cite.text
            self.outcome.citations = list(self.cite.found)
        self.outcome.result.waiting = None
        self.outcome.result.finish_reason = self.reason
        return [*held, harmony.Event("done", reason=self.reason)]


async def events(
    engine: QueuedEngine,
    prompt: list[int],
    ask: generation.Ask,
    outcome: Reply,
    processor: LogitsProcessor | None,
    toolbox: Toolbox,
    conversation: str,
) -> AsyncGenerator[harmony.Event, None]:
    """generation.events() with edgeoss answering the model's built-in tool calls (the server)."""
    rounds = _Rounds(prompt, ask.sampling.max_tokens, ask.timeout_s, outcome, toolbox, engine.context_length)
    rounds.cite = toolbox.citations(conversation)
    while (budget := rounds.budget()) is not None:
        tokens, left = budget
        round_ask = dataclasses.replace(
            ask, sampling=dataclasses.replace(ask.sampling, max_tokens=tokens), timeout_s=left
        )
        part, reason = Reply(), "length"
        async for event in generation.events(engine, rounds.prompt, round_ask, part, processor, toolbox.namespaces):
            if event.kind == "done":
                reason = event.reason
            elif not (event.kind == "builtin_call" and event.tool_call and toolbox.asks_approval(event.tool_call)):
                for shown in rounds.shown(event):  # (a call the user must approve is shown as the request, below)
                    yield shown
        call = rounds.ended(part, reason)
        if call is None:
            break
        if toolbox.asks_approval(call):
            # The request ends here: the user says yes or no in the next one (Responses'
            # mcp_approval_response), and the conversation goes on from this call.
            rounds.reason = "stop"
            for shown in rounds.shown(harmony.Event("approval_request", tool_call=call)):
                yield shown
            break
        answer = await asyncio.to_thread(rounds.answer, call, conversation)
        event, go_on = rounds.answered(call, answer, part)
        for shown in rounds.shown(event):
            yield shown
        if not go_on:
            break
    for event in rounds.done():
        yield event


def stream(
    engine: Engine,
    turns: Sequence[harmony.Turn],
    options: harmony.RenderOptions,
    sampling: Sampling,
    outcome: Reply,
    toolbox: Toolbox,
    cancel: threading.Event | None = None,
    processor: LogitsProcessor | None = None,
) -> Iterator[harmony.Event]:
    """runtime.reply.stream() with edgeoss answering the model's built-in tool calls (run, chat)."""
    if not toolbox:
        yield from plain_stream(engine, turns, options, sampling, outcome, cancel, processor)
        return
    prompt = prompt_for(turns, toolbox.render_options(options), outcome)
    rounds = _Rounds(prompt, sampling.max_tokens, None, outcome, toolbox, engine.context_length)
    conversation = conversation_key(turns)
    rounds.cite = toolbox.citations(conversation)
    while (budget := rounds.budget()) is not None:
        part = Reply()
        round_sampling = dataclasses.replace(sampling, max_tokens=budget[0])
        reason = "length"
        for event in stream_ids(engine, rounds.prompt, round_sampling, part, cancel, processor, toolbox.namespaces):
            if event.kind == "done":
                reason = event.reason
            else:
                yield from rounds.shown(event)
        call = rounds.ended(part, reason)
        if call is None or (cancel is not None and cancel.is_set()):
            break
        event, go_on = rounds.answered(call, rounds.answer(call, conversation), part)
        yield from rounds.shown(event)
        if not go_on:
            break
    yield from rounds.done()


def activity_text(event: harmony.Event) -> str:
    """A built-in call or its answer as reasoning text, for the APIs that have no item
    for it (Chat Completions, Ollama): shown in the reasoning, never in the answer."""
    call = event.tool_call
    name = call.name if call is not None else "tool"
    if event.kind == "builtin_call" and call is not None:
        return f"\n\n[{name}]\n{call.arguments.rstrip()}\n"
    return f"[{name} answered]\n{event.text.rstrip()}\n\n"
