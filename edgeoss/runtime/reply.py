"""One reply: render the conversation, generate with an engine, parse harmony.

The reply core of the CLI and the server alike: `Reply` is filled in while
the events flow (the parsed result, the engine's timings, the prompt's size)
and holds the one usage count every API reports. `stream()` is the plain,
synchronous path (run, chat); the server's asynchronous path
(server/generation.py) renders with `prompt_for()` and fills the same Reply.

Run on its own: python -m edgeoss.runtime.reply MODEL.gguf "PROMPT"
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeoss import harmony, spec
from edgeoss.engines.base import Engine, LogitsProcessor, Sampling, Timings
from edgeoss.errors import ContextOverflow


@dataclass
class Reply:
    """Filled in while the events flow; complete after the last one."""

    result: harmony.Result = field(default_factory=harmony.Result)
    timings: Timings = field(default_factory=Timings)
    prompt_tokens: int = 0
    timed_out: bool = False
    tokens: list[int] = field(default_factory=list)  # the generated ids, the stop id included
    tool_activity: list[dict[str, str]] = field(default_factory=list)  # built-in calls: tool, input, output
    citations: list[tuple[int, int, harmony.Source]] = field(default_factory=list)  # (start, end) in content
    logprobs: list[dict[str, Any]] = field(default_factory=list)  # the answer's tokens, when asked for
    wants_logprobs: bool = False  # the request asked for them (an answer may have none)

    @property
    def finish_reason(self) -> str:
        return self.result.finish_reason

    def usage(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.timings.generated_tokens,
            "total_tokens": self.prompt_tokens + self.timings.generated_tokens,
            "cached_tokens": self.timings.cached_tokens,
            "reasoning_tokens": self.result.reasoning_tokens,
        }

    def to_dict(self) -> dict[str, Any]:
        """The reply as `edgeoss run --json` prints it (with the model and backend added there)."""
        result, timings = self.result, self.timings
        return {
            "reasoning": result.reasoning,
            "content": result.content,
            "preamble": result.preamble,
            "tool_calls": [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in result.tool_calls],
            "finish_reason": result.finish_reason,
            "tool_activity": self.tool_activity,
            "malformed_tokens": result.malformed,
            "usage": self.usage(),
            "timings": {
                "time_to_first_token_s": round(timings.time_to_first_token_s, 4),
                "generation_s": round(timings.generation_s, 4),
                "tokens_per_s": round(timings.tokens_per_s, 2),
            },
        }


def prompt_for(
    turns: Sequence[harmony.Turn],
    options: harmony.RenderOptions,
    reply: Reply,
    context_length: int | None = None,
    max_tokens: int = 0,
) -> list[int]:
    """The prompt's token ids; ContextOverflow when they do not fit `context_length`."""
    prompt = harmony.render(turns, options)
    reply.prompt_tokens = len(prompt)
    if context_length is not None and len(prompt) >= context_length:
        raise ContextOverflow(len(prompt), context_length, max_tokens)
    return prompt


def stream(
    engine: Engine,
    turns: Sequence[harmony.Turn],
    options: harmony.RenderOptions,
    sampling: Sampling,
    reply: Reply,
    cancel: threading.Event | None = None,
    logits_processor: LogitsProcessor | None = None,
) -> Iterator[harmony.Event]:
    """Events of one reply; `reply` holds the result and timings when it ends."""
    prompt = prompt_for(turns, options, reply)
    yield from stream_ids(engine, prompt, sampling, reply, cancel, logits_processor)


def stream_ids(
    engine: Engine,
    prompt: Sequence[int],
    sampling: Sampling,
    reply: Reply,
    cancel: threading.Event | None = None,
    logits_processor: LogitsProcessor | None = None,
    builtin: Collection[str] = (),
) -> Iterator[harmony.Event]:
    """Events of one generation from prompt ids; `builtin`: the tool namespaces whose calls
    edgeoss answers (tools/loop.py), and the generated ids are kept in `reply.tokens`."""
    parser = harmony.StreamParser(builtin)
    reply.result = parser.result
    reply.timings = Timings()
    tokens = engine.generate(
        prompt, sampling, spec.STOP_TOKENS, cancel, logits_processor=logits_processor, timings=reply.timings
    )
    for token in tokens:
        reply.tokens.append(token)
        yield from parser.feed(token)
    if not parser.result.finish_reason:
        yield from parser.finish(reply.timings.stop_reason or "length")


def main() -> None:
    from edgeoss.engines.llamacpp.engine import LlamaCppEngine

    if len(sys.argv) != 3:
        raise SystemExit('usage: python -m edgeoss.runtime.reply MODEL.gguf "PROMPT"')
    engine = LlamaCppEngine(Path(sys.argv[1]))
    reply = Reply()
    for event in stream(engine, [harmony.Turn("user", sys.argv[2])], harmony.RenderOptions(), Sampling(), reply):
        if event.kind == "content":
            print(event.text, end="", flush=True)
    print()


if __name__ == "__main__":
    main()
