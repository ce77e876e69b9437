"""No body gets a 5xx: deep nesting, strings that are not text, and Ollama
options of the wrong type are 400s in the API's own error shape, checked on
the real app in-process (the model is never reached: each of these is
refused while the request is read)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from edgeoss.server.api import ollama
from edgeoss.server.service import MAX_JSON_DEPTH, with_effort
from modelless_host import modelless_client


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    return modelless_client(tmp_path)


ROUTES = [("/v1/chat/completions", "openai"), ("/v1/responses", "openai"), ("/api/chat", "ollama")]


def _error(response_json: dict[str, object], shape: str) -> str:
    if shape == "ollama":
        assert isinstance(response_json["error"], str)
        return response_json["error"]
    error = response_json["error"]
    assert isinstance(error, dict) and error["type"] == "invalid_request_error"
    return str(error["message"])


@pytest.mark.parametrize(("route", "shape"), ROUTES)
@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 200, 100_000])
def test_deep_nesting_is_a_400(client: TestClient, route: str, shape: str, depth: int) -> None:
    """Found from outside: 100,000 levels gave a 500 (RecursionError) and a dropped connection."""
    body = '{"messages": ' + "[" * depth + "]" * depth + ', "input": "x"}'
    r = client.post(route, content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert "nests deeper" in _error(r.json(), shape)
    assert client.get("/v1/models").status_code == 200  # and the server still answers


@pytest.mark.parametrize(("route", "shape"), ROUTES)
def test_a_lone_surrogate_is_a_400(client: TestClient, route: str, shape: str) -> None:
    body = '{"messages": [{"role": "user", "content": "a\\ud800b"}], "input": "a\\udc00"}'
    r = client.post(route, content=body, headers={"content-type": "application/json"})
    assert r.status_code == 400 and "not valid Unicode" in _error(r.json(), shape)


def test_nesting_within_the_limit_is_read(client: TestClient) -> None:
    schema: dict[str, object] = {"type": "object"}
    for _ in range(MAX_JSON_DEPTH // 2 - 4):
        schema = {"type": "object", "properties": {"x": schema}}
    body = {"messages": [{"role": "user", "content": "hi"}], "metadata": {"schema": schema}}
    r = client.post("/v1/chat/completions", json=body)
    assert r.status_code == 503  # past every check: the test double has no model to load


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"num_predict": "many"}, "num_predict"),
        ({"num_predict": 1.5}, "num_predict"),
        ({"temperature": "hot"}, "temperature"),
        ({"top_k": True}, "top_k"),
        ({"seed": [1]}, "seed"),
        ({"stop": 5}, "stop"),
        ({"stop": ["a", 1]}, "stop"),
        ({"use_mmap": "yes"}, "use_mmap"),
    ],
)
@pytest.mark.parametrize("route", ["/api/chat", "/api/generate"])
def test_ollama_options_of_the_wrong_type_are_a_400(
    client: TestClient, route: str, options: dict[str, object], named: str
) -> None:
    """Found from outside: `num_predict: "many"` was ignored and the request ran; Ollama rejects it."""
    body = {"model": "synthetic", "messages": [{"role": "user", "content": "hi"}], "prompt": "hi", "options": options}
    r = client.post(route, json=body)
    assert r.status_code == 400, r.text
    message = r.json()["error"]
    assert isinstance(message, str) and named in message


def test_ollama_options_of_the_right_type_pass(client: TestClient) -> None:
    options = {
        "num_predict": 8,
        "temperature": 0,
        "top_k": 40.0,
        "stop": "x",
        "num_ctx": 8192,
        "unknown_option": "kept",
    }
    body = {"model": "synthetic", "messages": [{"role": "user", "content": "hi"}], "options": options}
    assert client.post("/api/chat", json=body).status_code == 503  # past the checks, to the (absent) model


def test_open_webui_reasoning_effort_inside_ollama_options() -> None:
    """Open WebUI sends its reasoning_effort setting inside Ollama's options."""
    asked = {"model": "x", "options": {"reasoning_effort": "high"}}
    assert ollama.think_of(with_effort(asked, "low")) == ("high", True)
    assert ollama.think_of(with_effort({"model": "x", "options": {}}, "low")) == ("low", True)
    assert ollama.think_of({"think": False, "options": {"reasoning_effort": "high"}}) == ("low", False)
    with pytest.raises(Exception, match="reasoning_effort"):
        ollama.think_of({"options": {"reasoning_effort": "extreme"}})
    assert json.dumps(with_effort(asked, "low")) == json.dumps(asked)  # the request's own effort is untouched
