"""Reasoning kept across tool turns: a follow-up that drops the reasoning of
its tool-call turn renders token for token as if the client had sent it back;
the client's own reasoning wins; one key never gets another's; the memory is
bounded."""

from __future__ import annotations

from typing import Any

from edgeoss import harmony
from edgeoss.server.api import openai_chat
from edgeoss.server.reasoning_memory import ReasoningMemory, owner_of

THOUGHT = "The user wants Paris weather; call get_weather first."
CALL = harmony.ToolCall("get_weather", '{"city": "Paris"}', "call_3f9a0c")
WEATHER = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}},
}


def follow_up(reasoning: bool) -> list[dict[str, Any]]:
    assistant: dict[str, Any] = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": CALL.id, "type": "function", "function": {"name": CALL.name, "arguments": CALL.arguments}}
        ],
    }
    if reasoning:
        assistant["reasoning_content"] = THOUGHT
    return [
        {"role": "user", "content": "Weather in Paris?"},
        assistant,
        {"role": "tool", "tool_call_id": CALL.id, "content": '{"temp": 21}'},
    ]


def prompt(messages: list[dict[str, Any]], memory: ReasoningMemory, owner: str) -> list[int]:
    tools, _ = openai_chat.tools_of({"tools": [WEATHER]})
    turns = memory.fill(owner, openai_chat.turns_of(messages))
    return harmony.render(turns, harmony.RenderOptions(tools=tools))


def test_a_dropped_reasoning_is_put_back_token_for_token() -> None:
    memory = ReasoningMemory()
    owner = owner_of("key-a")
    memory.remember(owner, [CALL], THOUGHT)
    sent_back = prompt(follow_up(reasoning=True), ReasoningMemory(), owner)
    dropped = prompt(follow_up(reasoning=False), memory, owner)
    assert dropped == sent_back
    assert dropped != prompt(follow_up(reasoning=False), ReasoningMemory(), owner), "the reasoning is rendered"


def test_the_clients_own_reasoning_wins() -> None:
    memory = ReasoningMemory()
    memory.remember("", [CALL], "something else")
    (_, assistant, _) = memory.fill("", openai_chat.turns_of(follow_up(reasoning=True)))
    assert assistant.reasoning == THOUGHT


def test_one_key_never_gets_anothers_reasoning() -> None:
    memory = ReasoningMemory()
    memory.remember(owner_of("key-a"), [CALL], THOUGHT)
    for other in (owner_of("key-b"), owner_of("")):
        (_, assistant, _) = memory.fill(other, openai_chat.turns_of(follow_up(reasoning=False)))
        assert assistant.reasoning == ""
    assert owner_of("") == "" and owner_of("key-a") != owner_of("key-b") and "key-a" not in owner_of("key-a")


def test_a_final_answer_still_drops_earlier_reasoning() -> None:
    """Harmony's rule: analysis before an earlier final answer is not rendered, filled or not."""
    memory = ReasoningMemory()
    memory.remember("", [CALL], THOUGHT)
    messages = [
        *follow_up(reasoning=False),
        {"role": "assistant", "content": "It is 21 degrees."},
        {"role": "user", "content": "And tomorrow?"},
    ]
    filled = prompt(messages, memory, "")
    assert filled == prompt(messages, ReasoningMemory(), "")
    assert THOUGHT not in harmony.encoding().decode(filled)


def test_the_memory_is_bounded_oldest_first() -> None:
    memory = ReasoningMemory(max_entries=3, max_chars=100)
    calls = [harmony.ToolCall("f", "{}", f"call_{i}") for i in range(5)]
    for call in calls:
        memory.remember("", [call], "x" * 10)
    assert len(memory) == 3
    turn = [harmony.Turn("assistant", tool_calls=(calls[0],)), harmony.Turn("assistant", tool_calls=(calls[4],))]
    assert [t.reasoning for t in memory.fill("", turn)] == ["", "x" * 10]
    memory.remember("", [calls[0]], "y" * 95)  # past the character bound: older entries go
    assert memory.fill("", turn)[0].reasoning == "y" * 95 and len(memory) == 1
    memory.remember("", [harmony.ToolCall("f", "{}", "")], "no id")  # nothing to key it by
    memory.remember("", [calls[1]], "z" * 101)  # larger than the whole bound: not kept
    assert len(memory) == 1


def test_call_ids_are_unique() -> None:
    script = '<|channel|>commentary to=functions.f <|constrain|>json<|message|>{"a": 1}<|call|>'
    ids = set()
    for _ in range(50):
        parser = harmony.StreamParser()
        for token in harmony.encoding().encode(script, allowed_special="all"):
            parser.feed(token)
        ids.add(parser.result.tool_calls[0].id)
    assert len(ids) == 50 and all(i.startswith("call_") and len(i) == 29 for i in ids)
