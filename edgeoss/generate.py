"""One reply: render the conversation, generate with an engine, parse harmony.

Every API sits on this: it yields parser events as tokens arrive, and leaves
the parsed result and the engine's timings behind.

Run on its own: python -m edgeoss.generate MODEL.gguf "PROMPT"
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from edgeoss import harmony, spec
from edgeoss.engines.base import Engine, LogitsProcessor, Sampling, Timings


@dataclass
class Reply:
    result: harmony.Result = field(default_factory=harmony.Result)
    timings: Timings = field(default_factory=Timings)
    prompt_tokens: int = 0

    @property
    def usage(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.timings.generated_tokens,
            "reasoning_tokens": self.result.reasoning_tokens,
            "cached_tokens": self.timings.cached_tokens,
        }


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
    prompt = harmony.render(turns, options)
    reply.prompt_tokens = len(prompt)
    parser = harmony.StreamParser()
    reply.result = parser.result
    reply.timings = Timings()
    tokens = engine.generate(
        prompt, sampling, spec.STOP_TOKENS, cancel, logits_processor=logits_processor, timings=reply.timings
    )
    for token in tokens:
        yield from parser.feed(token)
    if not parser.result.finish_reason:
        yield from parser.finish(reply.timings.stop_reason or "length")


def main() -> None:
    from edgeoss.engines.llamacpp import LlamaCppEngine

    if len(sys.argv) != 3:
        raise SystemExit('usage: python -m edgeoss.generate MODEL.gguf "PROMPT"')
    engine = LlamaCppEngine(Path(sys.argv[1]))
    reply = Reply()
    for event in stream(engine, [harmony.Turn("user", sys.argv[2])], harmony.RenderOptions(), Sampling(), reply):
        if event.kind == "content":
            print(event.text, end="", flush=True)
    print()


if __name__ == "__main__":
    main()
