"""`edgeoss serve` with real clients: the openai SDK and httpx against the real
server process on a synthetic model, steered by forced token scripts."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import needs_llama
from edgeoss import harmony
from server_process import on_each_engine, running_server, script_header

needs_llama.llama_cpp()
openai = pytest.importorskip("openai")

THINK_THEN_ANSWER = (
    "<|channel|>analysis<|message|>The user greets me.<|end|>"
    "<|start|>assistant<|channel|>final<|message|>Hello! How can I help?<|return|>"
)
CALL_ON_ANALYSIS = (
    "<|channel|>analysis<|message|>Need the weather.<|end|>"
    "<|start|>assistant to=functions.get_weather<|channel|>analysis <|constrain|>json"
    '<|message|>{"city": "Paris"}<|call|>'
)
PREAMBLE_THEN_CALL = (
    "<|channel|>commentary<|message|>Let me check.<|end|>"
    "<|start|>assistant to=functions.get_weather<|channel|>commentary <|constrain|>json"
    '<|message|>{"city": "Oslo"}<|call|>'
)
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
HELLO = [{"role": "user", "content": "Hi"}]


@pytest.fixture(scope="module", params=["llama.cpp", "ort"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The server on each backend: batched llama.cpp (2 sequences of 2048
    tokens), and onnxruntime-genai (one sequence of 2048)."""
    with on_each_engine(request, tmp_path_factory, "--queue", "2") as url:
        yield url


@pytest.fixture(scope="module")
def client(server: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=server + "/v1", api_key="unused", max_retries=0)


def test_health_and_models(server: str, client: openai.OpenAI, request: pytest.FixtureRequest) -> None:
    health = httpx.get(server + "/health").json()
    assert (health["status"], health["model"], health["demo"]) == ("ready", "synthetic", True)
    # llama.cpp's placement also names the decode threads it timed (1 or 2 on this machine)
    backend = {"llama.cpp": r"llama\.cpp, CPU, \d+ CPU threads?", "ort": r"onnxruntime-genai, cpu"}
    assert re.fullmatch(backend[request.node.callspec.params["server"]], health["backend"]), health["backend"]
    assert health["context_per_sequence"] == 2048
    assert [m.id for m in client.models.list()] == ["synthetic"]


def test_reasoning_apart_from_the_answer(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="synthetic",
        messages=HELLO,
        reasoning_effort="high",
        extra_headers=script_header(THINK_THEN_ANSWER),
    )
    message = reply.choices[0].message
    assert message.content == "Hello! How can I help?"
    extra = message.model_extra or {}
    assert extra["reasoning_content"] == extra["reasoning"] == "The user greets me."
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None and reply.usage.completion_tokens_details is not None
    assert reply.usage.completion_tokens_details.reasoning_tokens == len(
        harmony.encoding().encode("The user greets me.")
    )
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_streaming_keeps_reasoning_out_of_content(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="synthetic",
        messages=HELLO,
        stream=True,
        stream_options={"include_usage": True},
        extra_headers=script_header(THINK_THEN_ANSWER),
    )
    content, reasoning, finish, usage = [], [], None, None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            content.append(choice.delta.content or "")
            reasoning.append((choice.delta.model_extra or {}).get("reasoning_content") or "")
            finish = choice.finish_reason or finish
    assert "".join(content) == "Hello! How can I help?"
    assert "".join(reasoning) == "The user greets me."
    assert finish == "stop" and usage is not None and usage.completion_tokens > 0


@pytest.mark.parametrize("stream", [False, True])
def test_a_tool_call_on_the_analysis_channel_is_a_tool_call(client: openai.OpenAI, stream: bool) -> None:
    kwargs = {
        "model": "synthetic",
        "messages": HELLO,
        "tools": [WEATHER],
        "extra_headers": script_header(CALL_ON_ANALYSIS),
    }
    if not stream:
        reply = client.chat.completions.create(**kwargs)  # type: ignore[call-overload]
        calls = reply.choices[0].message.tool_calls
        finish = reply.choices[0].finish_reason
    else:
        calls, finish = [], None
        for chunk in client.chat.completions.create(stream=True, **kwargs):  # type: ignore[call-overload]
            for choice in chunk.choices:
                calls += choice.delta.tool_calls or []
                finish = choice.finish_reason or finish
    assert finish == "tool_calls"
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [("get_weather", {"city": "Paris"})]
    assert all(c.id for c in calls)


def test_preamble_then_call_and_the_tool_result_round_trip(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="synthetic", messages=HELLO, tools=[WEATHER], extra_headers=script_header(PREAMBLE_THEN_CALL)
    )
    message = reply.choices[0].message
    assert message.content == "Let me check." and message.tool_calls
    call = message.tool_calls[0]
    follow = client.chat.completions.create(
        model="synthetic",
        messages=[
            *HELLO,
            {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
            {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 3}'},
        ],
        tools=[WEATHER],
        extra_headers=script_header("<|channel|>final<|message|>It is 3 C in Oslo.<|return|>"),
    )
    assert follow.choices[0].message.content == "It is 3 C in Oslo."


def test_reasoning_is_kept_across_a_tool_turn(server: str, client: openai.OpenAI) -> None:
    """The follow-up of a tool-call turn that drops its reasoning (as the openai SDK's users
    do) gets the same prompt as one that sends it back; a client with another key does not."""
    reply = client.chat.completions.create(
        model="synthetic", messages=HELLO, tools=[WEATHER], extra_headers=script_header(CALL_ON_ANALYSIS)
    )
    message = reply.choices[0].message
    (call,) = message.tool_calls or []
    assert message.model_extra and message.model_extra["reasoning_content"] == "Need the weather."
    dropped = [
        *HELLO,
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 3}'},
    ]
    sent_back = [dropped[0], {**dropped[1], "reasoning_content": "Need the weather."}, dropped[2]]
    other = openai.OpenAI(base_url=server + "/v1", api_key="another-key", max_retries=0)

    def prompt_tokens(c: openai.OpenAI, messages: list[dict[str, object]]) -> int:
        answer = c.chat.completions.create(model="synthetic", messages=messages, tools=[WEATHER], max_tokens=1)
        assert answer.usage is not None
        return answer.usage.prompt_tokens

    with_it, without_it = prompt_tokens(client, sent_back), prompt_tokens(client, dropped)
    assert with_it == without_it
    assert prompt_tokens(other, dropped) < with_it, "another key's follow-up got this key's reasoning"


def test_structured_output(client: openai.OpenAI) -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "integer"}}, "required": ["answer"]}
    reply = client.chat.completions.create(
        model="synthetic",
        messages=[{"role": "user", "content": "2+2?"}],
        response_format={"type": "json_schema", "json_schema": {"name": "sum", "schema": schema}},
        extra_headers=script_header('<|channel|>final<|message|>{"answer": 4}<|return|>'),
    )
    assert json.loads(reply.choices[0].message.content or "") == {"answer": 4}


def test_stop_strings_cut_the_answer(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="synthetic",
        messages=HELLO,
        stop=["How"],
        extra_headers=script_header(THINK_THEN_ANSWER),
    )
    assert reply.choices[0].message.content == "Hello! "
    assert reply.choices[0].finish_reason == "stop"


def test_max_tokens_ends_with_length(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model="synthetic", messages=HELLO, max_tokens=7, seed=1)
    assert reply.choices[0].finish_reason == "length" and reply.usage and reply.usage.completion_tokens == 7


# ------------------------------------------------------------------ error paths, with httpx


def error_of(response: httpx.Response) -> dict[str, object]:
    body = response.json()
    assert set(body) == {"error"} and {"message", "type", "param", "code"} <= set(body["error"])
    return dict(body["error"])


def test_malformed_json(server: str) -> None:
    r = httpx.post(server + "/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in str(error_of(r)["message"])


def test_unknown_model(server: str) -> None:
    r = httpx.post(server + "/v1/chat/completions", json={"model": "llama3", "messages": HELLO})
    assert r.status_code == 404 and error_of(r)["code"] == "model_not_found"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": []}, "messages"),
        ({"messages": HELLO, "n": 2}, "n"),
        ({"messages": HELLO, "reasoning_effort": "extreme"}, "reasoning_effort"),
        ({"messages": HELLO, "temperature": 9}, "temperature"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "messages[0]"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, "messages[0]"),
        ({"messages": HELLO, "tool_choice": {"function": {"name": "nope"}}, "tools": [WEATHER]}, "tool_choice"),
    ],
)
def test_invalid_requests_name_the_parameter(server: str, body: dict[str, object], param: str) -> None:
    r = httpx.post(server + "/v1/chat/completions", json=body)
    assert r.status_code == 400 and error_of(r)["param"] == param


def test_context_overflow_gives_the_numbers(server: str) -> None:
    r = httpx.post(server + "/v1/chat/completions", json={"messages": [{"role": "user", "content": "word " * 3000}]})
    error = error_of(r)
    assert r.status_code == 400 and error["code"] == "context_length_exceeded"
    assert "2048 per sequence" in str(error["message"])


def test_oversized_body(server: str) -> None:
    r = httpx.post(server + "/v1/chat/completions", json={"messages": [{"role": "user", "content": "x" * 2_000_000}]})
    assert r.status_code == 413


def test_foreign_host_header_is_refused(server: str) -> None:
    r = httpx.get(server + "/v1/models", headers={"Host": "evil.example:8734"})
    assert r.status_code == 403


def test_client_disconnect_cancels_the_generation(server: str) -> None:
    with httpx.stream(
        "POST", server + "/v1/chat/completions", json={"messages": HELLO, "stream": True, "max_tokens": 1500}
    ) as r:
        lines = r.iter_lines()
        for _ in range(6):
            next(lines)
    # The slot is free again well before 1500 tokens could have been generated.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        metrics = httpx.get(server + "/metrics").text
        if "edgeoss_requests_in_flight 0.0" in metrics:
            break
        time.sleep(0.05)
    else:
        pytest.fail("the generation kept running after the client left")


def test_queue_full_gives_429_with_retry_after(tiny_gguf: Path) -> None:
    with running_server(tiny_gguf, "--parallel", "1", "--queue", "0") as url:
        started = threading.Event()

        def hold() -> None:
            with httpx.stream(
                "POST",
                url + "/v1/chat/completions",
                json={"messages": HELLO, "stream": True, "max_tokens": 3000},
                headers=script_header("<|channel|>final<|message|>" + " and then" * 1500),  # cannot end early
            ) as r:
                try:
                    for _ in r.iter_lines():
                        started.set()
                except httpx.HTTPError:
                    pass  # the server stops with the test while this stream still runs

        holder = threading.Thread(target=hold, daemon=True)
        holder.start()
        assert started.wait(30)
        r = httpx.post(url + "/v1/chat/completions", json={"messages": HELLO, "max_tokens": 2})
        assert r.status_code == 429 and r.headers["Retry-After"] == "1"
        assert error_of(r)["code"] == "queue_full"


def test_api_key_is_required_on_every_api_route(tiny_gguf: Path) -> None:
    with running_server(tiny_gguf, "--api-key", "s3cret") as url:
        assert httpx.get(url + "/v1/models").status_code == 401
        assert httpx.get(url + "/v1/models", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert httpx.get(url + "/v1/models", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert httpx.get(url + "/health").status_code == 200  # health stays open, for supervisors
        c = openai.OpenAI(base_url=url + "/v1", api_key="s3cret", max_retries=0)
        assert c.chat.completions.create(model="synthetic", messages=HELLO, max_tokens=2).choices


# ------------------------------------------------------------------ the Responses API


FUNCTION = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def test_responses_reasoning_and_text(client: openai.OpenAI) -> None:
    r = client.responses.create(
        model="synthetic",
        input="Hi",
        instructions="Be brief.",
        reasoning={"effort": "low"},
        extra_headers=script_header(THINK_THEN_ANSWER),
    )
    assert r.status == "completed" and r.output_text == "Hello! How can I help?"
    assert [item.type for item in r.output] == ["reasoning", "message"]
    reasoning = r.output[0].model_dump()
    assert reasoning["content"][0]["text"] == "The user greets me."
    assert r.usage is not None and r.usage.output_tokens_details.reasoning_tokens > 0


def test_responses_streaming_events(client: openai.OpenAI) -> None:
    kinds, text, reasoning = [], [], []
    with client.responses.stream(
        model="synthetic", input="Hi", extra_headers=script_header(THINK_THEN_ANSWER)
    ) as stream:
        for event in stream:
            kinds.append(event.type)
            if event.type == "response.output_text.delta":
                text.append(event.delta)
            if event.type == "response.reasoning_text.delta":
                reasoning.append(event.delta)
        final = stream.get_final_response()
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"
    for kind in ("response.output_item.added", "response.output_item.done", "response.content_part.added"):
        assert kind in kinds
    assert "".join(text) == final.output_text == "Hello! How can I help?"
    assert "".join(reasoning) == "The user greets me."


def test_responses_function_call_and_previous_response_id(client: openai.OpenAI) -> None:
    first = client.responses.create(
        model="synthetic", input="Weather in Paris?", tools=[FUNCTION], extra_headers=script_header(CALL_ON_ANALYSIS)
    )
    [call] = [item for item in first.output if item.type == "function_call"]
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "Paris"}
    second = client.responses.create(
        model="synthetic",
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": '{"temp_c": 18}'}],
        tools=[FUNCTION],
        extra_headers=script_header("<|channel|>final<|message|>18 C in Paris.<|return|>"),
    )
    assert second.output_text == "18 C in Paris."
    assert second.usage is not None and second.usage.input_tokens > first.usage.input_tokens  # type: ignore[union-attr]


def test_responses_streaming_function_call_arguments(client: openai.OpenAI) -> None:
    deltas, done = [], []
    with client.responses.stream(
        model="synthetic", input="Weather?", tools=[FUNCTION], extra_headers=script_header(CALL_ON_ANALYSIS)
    ) as stream:
        for event in stream:
            if event.type == "response.function_call_arguments.delta":
                deltas.append(event.delta)
            if event.type == "response.function_call_arguments.done":
                done.append(event.arguments)
    assert json.loads("".join(deltas)) == json.loads(done[0]) == {"city": "Paris"}


def test_responses_unknown_previous_id(server: str) -> None:
    r = httpx.post(server + "/v1/responses", json={"input": "Hi", "previous_response_id": "resp_nope"})
    assert r.status_code == 400 and error_of(r)["param"] == "previous_response_id"


def test_a_built_in_tool_that_is_off_is_a_400_that_says_how_to_turn_it_on(server: str) -> None:
    body = {"input": "x", "tools": [{"type": "code_interpreter", "container": {"type": "auto"}}]}
    r = httpx.post(f"{server}/v1/responses", json=body, timeout=30)
    assert r.status_code == 400, r.text
    assert "edgeoss serve --tools python" in r.json()["error"]["message"]
