"""The harmony layer without an engine: the parser's end reasons, and the
renderer against the official chat template (through the real model:
tests/integration/test_engine_harmony.py)."""

from __future__ import annotations

import datetime
import json

import jinja2
import pytest

from edgeoss import harmony, resources

enc = harmony.encoding


def test_length_and_cancel_end_reasons() -> None:
    parser = harmony.StreamParser()
    for token in enc().encode("<|channel|>final<|message|>partial", allowed_special="all"):
        parser.feed(token)
    (done,) = parser.finish("length")
    assert done.reason == "length" and parser.result.content == "partial"


# --- the renderer against the official chat template ---------------------------------

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]


def _template(messages: list[dict[str, object]], tools: list[dict[str, object]] | None, effort: str) -> list[int]:
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)

    def raise_exception(message: str) -> None:
        raise ValueError(message)

    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.date(2026, 11, 23).strftime(fmt)
    # As transformers renders chat templates: a plain-string tojson (Jinja's own returns
    # Markup, which would HTML-escape every string concatenated to it).
    env.filters["tojson"] = lambda value, indent=None: json.dumps(value, ensure_ascii=False, indent=indent)
    text = env.from_string(resources.chat_template()).render(
        messages=messages, tools=tools, add_generation_prompt=True, reasoning_effort=effort
    )
    return enc().encode(text, allowed_special="all")


CONVERSATIONS = {
    "tools and a tool round trip": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": "",
            "thinking": "Use the tool.",
            "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}],
        },
        {"role": "tool", "content": '{"temp": 21}'},
    ],
    "history with earlier reasoning dropped": [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!", "thinking": "greet back"},
        {"role": "user", "content": "Weather in Paris?"},
    ],
}


def _turns(messages: list[dict[str, object]]) -> list[harmony.Turn]:
    turns = []
    for m in messages:
        calls = tuple(
            harmony.ToolCall(c["function"]["name"], json.dumps(c["function"]["arguments"]))  # type: ignore[index]
            for c in m.get("tool_calls", [])  # type: ignore[attr-defined]
        )
        name = "get_weather" if m["role"] == "tool" else ""
        turns.append(harmony.Turn(str(m["role"]), str(m["content"]), str(m.get("thinking", "")), calls, name))
    return turns


def _explained(template_text: str, messages: list[dict[str, object]]) -> str:
    """The template's text with its two known departures from the harmony format
    undone, each as openai-harmony (the reference renderer) writes it:
    - a tool call's content type: the template writes `commentary json`, the
      harmony format `commentary <|constrain|>json`;
    - a tool result: the template passes it through tojson (a quoted JSON
      string), harmony inserts the text as it is."""
    text = template_text.replace("commentary json<|message|>", "commentary <|constrain|>json<|message|>")
    for m in messages:
        if m["role"] == "tool":
            text = text.replace(json.dumps(m["content"], ensure_ascii=False), str(m["content"]))
    return text


@pytest.mark.parametrize("effort", harmony.EFFORTS)
@pytest.mark.parametrize("case", sorted(CONVERSATIONS))
def test_renderer_matches_the_official_template_with_tools(case: str, effort: str) -> None:
    messages = CONVERSATIONS[case]
    tool = harmony.Tool("get_weather", "Current weather for a city", TOOLS[0]["function"]["parameters"])  # type: ignore[index]
    ours = harmony.render(_turns(messages), harmony.RenderOptions(effort=effort, tools=(tool,), date="2026-11-23"))
    theirs = _template(messages, TOOLS, effort)
    if case == "history with earlier reasoning dropped":
        assert ours == theirs  # no tool call in the history: identical token ids
    else:
        assert ours != theirs
        assert ours == enc().encode(_explained(enc().decode(theirs), messages), allowed_special="all")


def test_renderer_without_tools_differs_only_by_the_template_s_trailing_blank_line() -> None:
    """The template always ends developer instructions with a blank line (it is
    written for a tools section that may follow); openai-harmony, the reference
    renderer, does not when there are no tools. That is the only difference."""
    messages = CONVERSATIONS["history with earlier reasoning dropped"]
    messages = [{"role": "system", "content": "Be brief."}, *messages]
    ours = harmony.render(_turns(messages), harmony.RenderOptions(effort="low", date="2026-11-23"))
    theirs = _template(messages, None, "low")
    text_ours, text_theirs = enc().decode(ours), enc().decode(theirs)
    assert text_theirs.replace("Be brief.\n\n<|end|>", "Be brief.<|end|>") == text_ours
