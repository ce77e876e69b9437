"""Structured output through the real server, on both engines: the demo
model's random weights never write valid JSON on their own, so every answer
that validates here was made to by the constraint. Chat Completions
(`response_format`), Responses (`text.format`) and Ollama (`format`), streamed
and not; tool arguments forced malformed by a script come out valid; a
required call is always made; an answer cut by max_tokens says `length`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

import needs_llama
from server_process import on_each_engine, script_header

needs_llama.llama_cpp()
openai = pytest.importorskip("openai")
jsonschema = pytest.importorskip("jsonschema")

SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["city", "days", "unit", "hours", "alerts", "source"],
    "properties": {
        "city": {"type": "string", "maxLength": 16},
        "days": {"type": "integer", "minimum": 1, "maximum": 14},
        "unit": {"enum": ["celsius", "fahrenheit"]},
        "hours": {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 23}, "maxItems": 4},
        "alerts": {"type": "boolean"},
        "source": {
            "type": "object",
            "additionalProperties": False,
            "required": ["name", "score"],
            "properties": {
                "name": {"enum": ["met", "noaa", None]},
                "score": {"type": "number", "minimum": 0, "maximum": 1, "multipleOf": 0.25},
            },
        },
    },
}
REQUESTS = 50  # per API family and engine, half of them streamed
BUDGET = 240  # tokens per answer: the reasoning may take at most half


def question(i: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"Weather report #{i} for a city, as JSON."}]


@pytest.fixture(scope="module", params=["llama.cpp", "ort"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with on_each_engine(request, tmp_path_factory, "--queue", "8") as url:
        yield url


@pytest.fixture(scope="module")
def client(server: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=server + "/v1", api_key="unused", max_retries=0, timeout=120)


def check_all(answers: list[tuple[str, str]]) -> None:
    """Every (answer, finish) validates and finished on its own."""
    for answer, finish in answers:
        assert finish == "stop", (finish, answer)
        jsonschema.validate(json.loads(answer), SCHEMA)


def chat_one(client: openai.OpenAI, i: int) -> tuple[str, str]:
    fmt = {"type": "json_schema", "json_schema": {"name": "report", "schema": SCHEMA, "strict": True}}
    if i % 2:
        reply = client.chat.completions.create(
            model="synthetic", messages=question(i), response_format=fmt, max_tokens=BUDGET, seed=i
        )
        return reply.choices[0].message.content or "", reply.choices[0].finish_reason
    text, finish = "", ""
    stream = client.chat.completions.create(
        model="synthetic", messages=question(i), response_format=fmt, max_tokens=BUDGET, seed=i, stream=True
    )
    for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            finish = chunk.choices[0].finish_reason or finish
    return text, finish


def test_chat_completions_answers_always_validate(client: openai.OpenAI) -> None:
    with ThreadPoolExecutor(4) as pool:
        check_all(list(pool.map(lambda i: chat_one(client, i), range(REQUESTS))))


def responses_one(client: openai.OpenAI, i: int) -> tuple[str, str]:
    fmt = {"type": "json_schema", "name": "report", "schema": SCHEMA, "strict": True}
    args: dict[str, Any] = {"model": "synthetic", "input": question(i)[0]["content"], "text": {"format": fmt}}
    args["max_output_tokens"] = BUDGET
    if i % 2:
        reply = client.responses.create(**args)
        kinds = [item.type for item in reply.output]
        assert kinds[-1] == "message", kinds
        return reply.output_text, "stop" if reply.status == "completed" else str(reply.incomplete_details)
    text, status = "", ""
    for event in client.responses.create(**args, stream=True):
        if event.type == "response.output_text.delta":
            text += event.delta
        elif event.type in ("response.completed", "response.incomplete"):
            status = event.response.status
    return text, "stop" if status == "completed" else status


def test_responses_answers_always_validate(client: openai.OpenAI) -> None:
    with ThreadPoolExecutor(4) as pool:
        check_all(list(pool.map(lambda i: responses_one(client, i), range(REQUESTS))))


def ollama_one(server: str, i: int) -> tuple[str, str]:
    body = {"model": "synthetic", "messages": question(i), "format": SCHEMA, "options": {"num_predict": BUDGET}}
    if i % 2:
        reply = httpx.post(server + "/api/chat", json={**body, "stream": False}, timeout=120).json()
        return reply["message"]["content"], reply.get("done_reason", "")
    text, reason = "", ""
    with httpx.stream("POST", server + "/api/chat", json=body, timeout=120) as r:
        for line in r.iter_lines():
            if line:
                part = json.loads(line)
                text += part.get("message", {}).get("content", "")
                reason = part.get("done_reason", reason)
    return text, reason


def test_ollama_answers_always_validate(server: str) -> None:
    with ThreadPoolExecutor(4) as pool:
        check_all(list(pool.map(lambda i: ollama_one(server, i), range(REQUESTS))))


THINK_THEN_PROSE = (
    "<|channel|>analysis<|message|>The user wants a weather report; I will pick a city.<|end|>"
    "<|start|>assistant<|channel|>final<|message|>Sunny in Oslo, no JSON here.<|return|>"
)


def test_the_reasoning_is_kept_and_the_answer_is_made_valid(client: openai.OpenAI) -> None:
    """A model that reasons, then answers in prose: the reasoning goes through as it was
    written (the analysis channel is free), the answer is made to fit the schema."""
    fmt = {"type": "json_schema", "json_schema": {"name": "report", "schema": SCHEMA, "strict": True}}
    reply = client.chat.completions.create(
        model="synthetic",
        messages=question(0),
        response_format=fmt,
        max_tokens=BUDGET,
        extra_headers=script_header(THINK_THEN_PROSE),
    )
    message = reply.choices[0].message
    assert message.model_extra and message.model_extra["reasoning_content"] == (
        "The user wants a weather report; I will pick a city."
    )
    assert reply.choices[0].finish_reason == "stop"
    jsonschema.validate(json.loads(message.content or ""), SCHEMA)


WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "strict": True,
        "parameters": {
            "type": "object",
            "additionalProperties": False,
            "required": ["city", "days"],
            "properties": {
                "city": {"type": "string", "maxLength": 20},
                "days": {"type": "integer", "minimum": 1, "maximum": 14},
            },
        },
    },
}
MALFORMED_CALL = (
    "<|channel|>analysis<|message|>Need the weather.<|end|>"
    "<|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json"
    '<|message|>{city: \'Paris\', "days": "three",}<|call|>'
)


def test_malformed_arguments_are_made_valid(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="synthetic",
        messages=question(0),
        tools=[WEATHER],
        max_tokens=BUDGET,
        extra_headers=script_header(MALFORMED_CALL),
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls", choice
    (call,) = choice.message.tool_calls or []
    jsonschema.validate(json.loads(call.function.arguments), WEATHER["function"]["parameters"])


def test_a_required_call_is_always_made(client: openai.OpenAI) -> None:
    for i, choice in enumerate(["required", {"type": "function", "function": {"name": "get_weather"}}] * 3):
        reply = client.chat.completions.create(
            model="synthetic", messages=question(i), tools=[WEATHER], tool_choice=choice, max_tokens=BUDGET, seed=i
        )
        (call,) = reply.choices[0].message.tool_calls or []
        assert call.function.name == "get_weather"
        jsonschema.validate(json.loads(call.function.arguments), WEATHER["function"]["parameters"])


def test_an_answer_cut_short_says_length(client: openai.OpenAI) -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "report", "schema": SCHEMA, "strict": True}}
    reply = client.chat.completions.create(model="synthetic", messages=question(1), response_format=fmt, max_tokens=20)
    assert reply.choices[0].finish_reason == "length"


def test_a_schema_that_cannot_be_enforced_is_a_400(server: str) -> None:
    impossible = {"type": "object", "properties": {"a": {"type": "string", "pattern": "(?<=x)y"}}, "required": ["a"]}
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": impossible, "strict": True}}
    r = httpx.post(
        server + "/v1/chat/completions",
        json={"model": "synthetic", "messages": question(0), "response_format": fmt},
        timeout=60,
    )
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == "response_format" and "cannot be enforced" in error["message"]


def test_the_server_still_answers_plain_requests(client: openai.OpenAI, tmp_path: Path) -> None:
    reply = client.chat.completions.create(model="synthetic", messages=question(0), max_tokens=16)
    assert reply.choices[0].finish_reason in ("stop", "length")


# --- logprobs, on the same servers: the constraint makes the demo model write an answer ----------

JSON_OBJECT = {"type": "json_object"}


def check_entries(entries: list[Any], content: str) -> None:
    """Each answer token once, in order, its own top alternative at temperature 0."""
    assert entries, "no logprobs"
    assert b"".join(bytes(e["bytes"]) for e in entries).decode() == content
    for e in entries:
        assert e["logprob"] <= 0
        top = e["top_logprobs"]
        assert len(top) == 3 and top[0]["bytes"] == e["bytes"]
        assert top[0]["logprob"] == pytest.approx(e["logprob"])
        assert [t["logprob"] for t in top] == sorted((t["logprob"] for t in top), reverse=True)


def test_chat_completions_logprobs_streamed_and_not(server: str) -> None:
    body = {
        "model": "synthetic",
        "messages": question(7),
        "response_format": {"type": "json_schema", "json_schema": {"name": "r", "schema": SCHEMA, "strict": True}},
        "logprobs": True,
        "top_logprobs": 3,
        "temperature": 0,
        "max_tokens": BUDGET,
    }
    reply = httpx.post(server + "/v1/chat/completions", json=body, timeout=120).json()
    choice = reply["choices"][0]
    whole = choice["logprobs"]["content"]
    check_entries(whole, choice["message"]["content"])
    streamed, text = [], ""
    with httpx.stream("POST", server + "/v1/chat/completions", json={**body, "stream": True}, timeout=120) as r:
        for line in r.iter_lines():
            if line.startswith("data: {"):
                chunk = json.loads(line[6:])["choices"][0]
                text += chunk["delta"].get("content") or ""
                streamed += (chunk.get("logprobs") or {}).get("content") or []
    check_entries(streamed, text)
    assert [e["bytes"] for e in streamed] == [e["bytes"] for e in whole]
    plain = httpx.post(server + "/v1/chat/completions", json={**body, "logprobs": False, "top_logprobs": None})
    assert plain.json()["choices"][0]["logprobs"] is None


def test_responses_logprobs_streamed(client: openai.OpenAI) -> None:
    fmt = {"type": "json_schema", "name": "report", "schema": SCHEMA, "strict": True}
    args: dict[str, Any] = {"model": "synthetic", "input": "A report.", "text": {"format": fmt}, "temperature": 0}
    args.update(max_output_tokens=BUDGET, include=["message.output_text.logprobs"], top_logprobs=3)
    deltas: list[Any] = []
    final = None
    for event in client.responses.create(**args, stream=True):
        if event.type == "response.output_text.delta":
            deltas += [e.model_dump() for e in event.logprobs]
        elif event.type == "response.completed":
            final = event.response
    assert final is not None
    (part,) = [p for item in final.output if item.type == "message" for p in item.content]
    check_entries([e.model_dump() for e in part.logprobs or []], part.text)
    check_entries(deltas, part.text)


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
        ({"top_logprobs": 2}, "top_logprobs"),
        ({"logprobs": "yes"}, "logprobs"),
    ],
)
def test_bad_logprobs_are_named(server: str, extra: dict[str, Any], param: str) -> None:
    r = httpx.post(server + "/v1/chat/completions", json={"model": "synthetic", "messages": question(0), **extra})
    assert r.status_code == 400 and r.json()["error"]["param"] == param, r.text
