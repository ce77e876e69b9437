"""A request's shape as a Lark grammar of the whole assistant turn, in harmony.

The prompt ends with `<|start|>assistant`; the turn is then up to
MAX_MESSAGES reasoning or preamble messages (`<|channel|>analysis` or
`commentary`, free text, each at most `thought_tokens` when bounded; no
preamble when the answer has a schema, since every API shows a preamble as
part of the answer), each ended by `<|end|><|start|>assistant`, and then the
last message:

- the final answer, `<|channel|>final<|message|>` then the response schema's
  JSON (or free text) and `<|return|>` (not offered when a call is required);
- a call to a function or an MCP tool, its header as gpt-oss writes it (the
  recipient after the channel, or after the role), `<|constrain|>json`
  optional, then JSON of its parameter schema and `<|call|>`;
- a call to one of gpt-oss's own tools edgeoss runs (python, browser.*), its
  input free, then `<|call|>`.

JSON is written without free whitespace (", " and ": " between items): a
model's whitespace is not information, and an unbounded run of it (which a
weak model will produce when allowed) is the usual way a constrained answer
never ends.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from edgeoss import harmony

MAX_MESSAGES = 4
"""Reasoning and preamble messages before the last one: gpt-oss writes one or two."""

JSON_STYLE = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}

RECIPIENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}")
"""A name the grammar can hold as a literal (OpenAI's function names are [A-Za-z0-9_-]{1,64})."""


class ShapeError(ValueError):
    """The request asks for a shape that cannot be enforced (the message says which part)."""


@dataclass(frozen=True)
class Shape:
    """What the turn may contain."""

    answer: Mapping[str, Any] | None = None  # the final answer's JSON schema; None: free text
    calls: tuple[tuple[str, Mapping[str, Any] | None], ...] = ()  # recipient -> parameter schema
    builtins: tuple[str, ...] = ()  # recipients whose input is free (python, browser.search, ...)
    call_required: bool = False  # tool_choice required, or a named function
    thought_tokens: int = 0  # most tokens per reasoning message; 0: no bound
    strict: bool = True  # an unsupported schema keyword is an error (else it is ignored)

    @property
    def constrains(self) -> bool:
        """Whether there is anything to enforce (otherwise decoding stays free)."""
        return self.answer is not None or bool(self.calls) or self.call_required


BUILTIN_RECIPIENTS = {"python": ("python",), "browser": ("browser.search", "browser.open", "browser.find")}
"""The recipients each of gpt-oss's own tools is called by."""

MIN_THOUGHT_TOKENS = 16


def shape_of(options: harmony.RenderOptions, call_required: bool, lenient: bool, max_tokens: int) -> Shape:
    """A request's shape: its response schema, its functions and the MCP servers' tools
    (JSON of their parameters), the built-in tools on for it (free input). When the turn
    must end in an answer of a schema or in a call, the reasoning messages together are
    bounded to half the token budget, so the end it must reach still fits."""
    calls = [(f"functions.{t.name}", t.parameters) for t in options.tools]
    calls += [(f"{n.name}.{t.name}", t.parameters) for n in options.namespaces for t in n.tools]
    builtins = tuple(r for name in options.builtin_tools for r in BUILTIN_RECIPIENTS.get(name, ()))
    must_end = options.response_schema is not None or call_required
    return Shape(
        answer=options.response_schema,
        calls=tuple(calls),
        builtins=builtins,
        call_required=call_required,
        thought_tokens=max(MIN_THOUGHT_TOKENS, max_tokens // (2 * MAX_MESSAGES)) if must_end else 0,
        strict=not lenient,
    )


def _literal(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _json(schema: Mapping[str, Any] | None, strict: bool) -> str:
    body: dict[str, Any] = dict(schema) if schema else {"type": "object"}
    body["x-guidance"] = {**JSON_STYLE, "lenient": not strict}
    return "%json " + json.dumps(body, ensure_ascii=False)


def lark(shape: Shape) -> str:
    """The grammar text (llguidance's Lark dialect)."""
    rules: list[str] = []
    last: list[str] = []
    if not shape.call_required:
        answer = _json(shape.answer, shape.strict) if shape.answer is not None else "TEXT"
        # The header may name the answer's content type as a call's does (<|constrain|>json).
        rules.append(
            f'final: <|channel|> "final" (" "? <|constrain|> "json")? <|message|> answer <|return|>\nanswer: {answer}'
        )
        last.append("final")
    ctype = '(" " <|constrain|> "json" | " json")?'
    for i, (recipient, schema) in enumerate(shape.calls):
        if not RECIPIENT.fullmatch(recipient):
            raise ShapeError(f"the tool name {recipient[:80]!r} cannot be enforced (letters, digits, _ . - only)")
        to = _literal(f" to={recipient}")
        rules.append(
            f"call{i}: <|channel|> call_ch {to} {ctype} <|message|> args{i} <|call|>\n"
            f"    | {to} <|channel|> call_ch {ctype} <|message|> args{i} <|call|>\n"
            f"args{i}: {_json(schema, shape.strict)}"
        )
        last.append(f"call{i}")
    if shape.calls:
        # gpt-oss calls on commentary as trained, and on analysis now and then: both are calls.
        rules.append('call_ch: "commentary" | "analysis"')
    if shape.builtins:
        names = " | ".join(_literal(f" to={name}") for name in shape.builtins)
        rules.append(
            f"builtin_to: {names}\n"
            'builtin_ch: "analysis" | "commentary"\n'
            'builtin: <|channel|> builtin_ch builtin_to (" code" | " json")? <|message|> TEXT <|call|>\n'
            '    | builtin_to <|channel|> builtin_ch (" code" | " json")? <|message|> TEXT <|call|>'
        )
        last.append("builtin")
    if not last:
        raise ShapeError("a call is required, but the request offers no tool to call")
    bound = f"[max_tokens={shape.thought_tokens}]" if shape.thought_tokens > 0 else ""
    head = [
        f'start: (message <|end|> <|start|> "assistant"){{0,{MAX_MESSAGES}}} last',
        # A preamble (commentary to no one) is shown as part of the answer in every API, so
        # with a response schema only reasoning may come before it: the answer stays JSON alone.
        'message: <|channel|> "analysis" <|message|> thought'
        + ("" if shape.answer is not None else ' | <|channel|> "commentary" <|message|> thought'),
        f"thought{bound}: TEXT",
        "last: " + " | ".join(last),
    ]
    return "\n".join([*head, *rules, "TEXT: /(?s:.*)/", ""])
