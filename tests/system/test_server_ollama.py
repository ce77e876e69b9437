"""The Ollama-compatible routes with the real `ollama` client against the real server."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

import needs_llama
from server_process import running_server, script_header

needs_llama.llama_cpp()
ollama = pytest.importorskip("ollama")

THINK_THEN_ANSWER = (
    "<|channel|>analysis<|message|>Simple greeting.<|end|>"
    "<|start|>assistant<|channel|>final<|message|>Hi there.<|return|>"
)
CALL = (
    "<|channel|>analysis<|message|>Use the tool.<|end|>"
    "<|start|>assistant to=functions.add<|channel|>commentary <|constrain|>json"
    '<|message|>{"a": 2, "b": 3}<|call|>'
)
ADD = {
    "type": "function",
    "function": {
        "name": "add",
        "description": "Add two numbers",
        "parameters": {
            "type": "object",
            "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
            "required": ["a", "b"],
        },
    },
}


@pytest.fixture(scope="module", params=["llama.cpp", "ort"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The server on each backend: batched llama.cpp, and onnxruntime-genai."""
    log = tmp_path_factory.mktemp("ollama") / "server.log"
    if request.param == "ort":
        pytest.importorskip("onnxruntime_genai")
        model, args = request.getfixturevalue("tiny_onnx"), ["--backend", "ort"]
    else:
        model, args = request.getfixturevalue("tiny_gguf"), ["--parallel", "2"]
    with running_server(model, *args, log=log) as url:
        yield url


def client(server: str, script: str | None = None) -> ollama.Client:
    return ollama.Client(host=server, headers=script_header(script) if script else None)


def test_version_tags_show_ps(server: str) -> None:
    c = client(server)
    assert httpx.get(server + "/api/version").json()["version"]
    [model] = c.list().models
    assert model.model == "gpt-oss:20b" and model.details and model.details.quantization_level == "MXFP4"
    shown = c.show("gpt-oss:20b")
    assert "thinking" in (shown.capabilities or []) and "tools" in (shown.capabilities or [])
    assert shown.modelinfo and shown.modelinfo["general.architecture"] == "gpt-oss"
    assert [m.model for m in c.ps().models] == ["gpt-oss:20b"]


def test_chat_returns_thinking_apart(server: str) -> None:
    reply = client(server, THINK_THEN_ANSWER).chat(
        model="gpt-oss:20b", messages=[{"role": "user", "content": "Hi"}], think="high"
    )
    assert reply.message.content == "Hi there." and reply.message.thinking == "Simple greeting."
    assert reply.done and reply.done_reason == "stop" and (reply.eval_count or 0) > 0


def test_think_false_keeps_thinking_out_of_everything(server: str) -> None:
    reply = client(server, THINK_THEN_ANSWER).chat(
        model="gpt-oss:20b", messages=[{"role": "user", "content": "Hi"}], think=False
    )
    assert reply.message.content == "Hi there." and not reply.message.thinking


def test_streaming_chat(server: str) -> None:
    parts = list(
        client(server, THINK_THEN_ANSWER).chat(
            model="gpt-oss:20b", messages=[{"role": "user", "content": "Hi"}], stream=True, think=True
        )
    )
    assert "".join(p.message.content or "" for p in parts) == "Hi there."
    assert "".join(p.message.thinking or "" for p in parts) == "Simple greeting."
    assert parts[-1].done and not any(p.done for p in parts[:-1])


def test_tool_calls_come_with_object_arguments(server: str) -> None:
    reply = client(server, CALL).chat(model="gpt-oss:20b", messages=[{"role": "user", "content": "2+3"}], tools=[ADD])
    calls = reply.message.tool_calls or []
    assert [(c.function.name, dict(c.function.arguments)) for c in calls] == [("add", {"a": 2, "b": 3})]


def test_generate(server: str) -> None:
    reply = client(server, THINK_THEN_ANSWER).generate(model="gpt-oss:20b", prompt="Hi", think=True)
    assert reply.response == "Hi there." and reply.thinking == "Simple greeting."


def test_ndjson_is_the_default_and_errors_are_ollama_shaped(server: str) -> None:
    r = httpx.post(
        server + "/api/chat",
        json={"model": "gpt-oss:20b", "messages": [{"role": "user", "content": "Hi"}]},
        headers=script_header(THINK_THEN_ANSWER),
    )
    lines = [json.loads(line) for line in r.text.splitlines()]
    assert r.headers["content-type"].startswith("application/x-ndjson") and len(lines) > 2 and lines[-1]["done"]
    bad = httpx.post(server + "/api/chat", json={"model": "llama3", "messages": [{"role": "user", "content": "x"}]})
    assert bad.status_code == 404 and isinstance(bad.json()["error"], str)
    missing = httpx.post(server + "/api/push", json={"model": "x"})
    assert missing.status_code == 404 and "not provided by edgeoss" in missing.json()["error"]
    # /api/pull is provided: a name it cannot pull is an error in Ollama's shape (no Hub is asked)
    unknown = httpx.post(server + "/api/pull", json={"model": "x", "stream": False})
    assert unknown.status_code == 400 and "no gguf artifact" in unknown.json()["error"]
