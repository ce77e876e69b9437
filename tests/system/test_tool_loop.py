"""The tool loop through the real engine and server: forced token scripts make
the model call `python` (run in the real sandbox), read the answer rendered
back in harmony, and go on to a final answer; state survives into the next
request of the same conversation; a developer function after a built-in
call goes back to the client; the bound on calls ends a request that will
not stop calling. Checked with the openai SDK, httpx and the Ollama route."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import needs_llama
from edgeoss import harmony
from edgeoss.tools import loop, sandbox
from server_process import running_server, script_header

needs_llama.llama_cpp()
openai = pytest.importorskip("openai")
pytestmark = pytest.mark.skipif(not sandbox.status().available, reason=f"no sandbox: {sandbox.status().detail}")


def python_call(code: str, thought: str = "Let me compute.") -> str:
    """The model's analysis, then a call to python ending the generation at <|call|>."""
    return (
        f"<|channel|>analysis<|message|>{thought}<|end|>"
        f"<|start|>assistant to=python<|channel|>analysis code<|message|>{code}<|call|>"
    )


def final(text: str) -> str:
    return f"<|channel|>final<|message|>{text}<|return|>"


WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


@pytest.fixture(scope="module")
def server(tiny_gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("tool-loop") / "server.log"
    with running_server(
        tiny_gguf, "--parallel", "1", "--ctx", "8192", "--tools", "python", "--tool-timeout", "3", log=log
    ) as url:
        yield url


def chat(server: str, script: str, first: str = "What is 6 times 7?", **extra: object) -> dict[str, object]:
    body = {"messages": [{"role": "user", "content": first}], "max_tokens": 400, **extra}
    r = httpx.post(f"{server}/v1/chat/completions", json=body, headers=script_header(script), timeout=60)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def test_python_runs_and_the_model_goes_on_to_answer(server: str) -> None:
    reply = chat(server, python_call("x = 6 * 7\nx") + final("It is 42."), first="conversation one")
    (choice,) = reply["choices"]  # type: ignore[misc]
    message = choice["message"]
    assert message["content"] == "It is 42." and choice["finish_reason"] == "stop"
    assert message["edgeoss"]["tool_activity"] == [{"tool": "python", "input": "x = 6 * 7\nx", "output": "42"}]
    assert "Let me compute." in message["reasoning_content"]
    assert "42" not in message["content"].replace("It is 42.", "")  # the tool's output stays out of the answer
    # The same conversation again: the interpreter kept x.
    again = chat(server, python_call("x + 1", "Again.") + final("43."), first="conversation one")
    assert again["choices"][0]["message"]["edgeoss"]["tool_activity"][0]["output"] == "43"  # type: ignore[index]
    # Another conversation has its own interpreter.
    other = chat(server, python_call("x") + final("?"), first="conversation two")
    output = other["choices"][0]["message"]["edgeoss"]["tool_activity"][0]["output"]  # type: ignore[index]
    assert "NameError" in output


def test_the_tool_answer_is_rendered_back_in_harmony(server: str) -> None:
    """The prompt of the second round is the first plus the call plus the tool's message:
    checked by the model's own usage count (one prompt, every generated token counted once)."""
    script = python_call("print('hi')") + final("Done.")
    reply = chat(server, script, first="harmony check")
    usage = reply["usage"]
    generated = harmony.encoding().encode(script, allowed_special="all")
    assert usage["completion_tokens"] == len(generated)  # type: ignore[index]
    tool_message = harmony.tool_reply("python", "hi", "analysis")
    first_prompt = usage["prompt_tokens"]  # type: ignore[index]
    assert first_prompt > 0 and usage["total_tokens"] == first_prompt + len(generated)  # type: ignore[index]
    assert harmony.encoding().decode(tool_message).startswith("<|start|>python to=assistant<|channel|>analysis")


def test_streaming_shows_the_tool_in_the_reasoning_only(server: str) -> None:
    client = openai.OpenAI(base_url=f"{server}/v1", api_key="none")
    stream = client.chat.completions.create(
        model="synthetic",
        messages=[{"role": "user", "content": "stream it"}],
        max_tokens=400,
        stream=True,
        extra_headers=script_header(python_call("2 ** 10") + final("1024.")),
    )
    reasoning, content, activity = "", "", []
    for chunk in stream:
        delta = chunk.choices[0].delta if chunk.choices else None
        if delta is None:
            continue
        extra = delta.model_extra or {}
        reasoning += extra.get("reasoning_content") or ""
        content += delta.content or ""
        activity += (extra.get("edgeoss") or {}).get("tool_activity", [])
    assert content == "1024."
    assert "[python]\n2 ** 10" in reasoning and "[python answered]\n1024" in reasoning
    assert activity == [{"tool": "python", "input": "2 ** 10", "output": "1024"}]


def test_a_developer_function_after_python_goes_to_the_client(server: str) -> None:
    call = ' to=functions.get_weather<|channel|>commentary <|constrain|>json<|message|>{"city": "Paris"}<|call|>'
    reply = chat(server, python_call("'Paris'") + call, first="weather please", tools=[WEATHER])
    (choice,) = reply["choices"]  # type: ignore[misc]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"city": "Paris"}'}
    assert choice["message"]["edgeoss"]["tool_activity"][0]["output"] == "'Paris'"


def test_the_bound_on_calls_ends_a_request_that_keeps_calling(server: str) -> None:
    calls = loop.MAX_CALLS + 2
    script = "".join(python_call(f"{i}", f"Call {i}.") for i in range(calls)) + final("never")
    reply = chat(server, script, first="loop forever", max_tokens=3000)
    (choice,) = reply["choices"]  # type: ignore[misc]
    activity = choice["message"]["edgeoss"]["tool_activity"]
    assert [a["output"] for a in activity[: loop.MAX_CALLS]] == [str(i) for i in range(loop.MAX_CALLS)]
    assert "limit of 8 tool calls" in activity[loop.MAX_CALLS]["output"]
    assert choice["finish_reason"] == "length" and not choice["message"]["content"]


def test_ollama_chat_shows_the_tool_in_thinking(server: str) -> None:
    body = {
        "model": "synthetic",
        "messages": [{"role": "user", "content": "ollama"}],
        "stream": False,
        "think": True,
        "options": {"num_predict": 400},
    }
    r = httpx.post(
        f"{server}/api/chat", json=body, headers=script_header(python_call("3 * 3") + final("9")), timeout=60
    )
    assert r.status_code == 200, r.text
    reply = r.json()
    assert reply["message"]["content"] == "9" and reply["edgeoss"]["tool_activity"][0]["output"] == "9"
    lines = httpx.post(
        f"{server}/api/chat",
        json={**body, "stream": True},
        headers=script_header(python_call("3 * 3") + final("9")),
        timeout=60,
    ).text.splitlines()
    thinking = "".join(json.loads(line)["message"].get("thinking", "") for line in lines[:-1])
    assert "[python answered]\n9" in thinking


def test_the_server_serves_on_after_a_sandbox_was_killed(server: str) -> None:
    reply = chat(server, python_call("while True:\n    pass") + final("gave up"), first="hang it", max_tokens=400)
    message = reply["choices"][0]["message"]  # type: ignore[index]
    assert message["content"] == "gave up"
    assert "was stopped" in message["edgeoss"]["tool_activity"][0]["output"]
    assert httpx.get(f"{server}/health").json()["status"] == "ready"


def test_responses_reports_a_code_interpreter_call(server: str) -> None:
    client = openai.OpenAI(base_url=f"{server}/v1", api_key="none")
    script = python_call("sum(range(5))") + final("Ten.")
    response = client.responses.create(
        model="synthetic",
        input="responses one",
        tools=[{"type": "code_interpreter", "container": {"type": "auto"}}],
        max_output_tokens=400,
        extra_headers=script_header(script),
    )
    kinds = [item.type for item in response.output]
    assert kinds == ["reasoning", "code_interpreter_call", "message"], kinds
    call = response.output[1]
    assert call.code == "sum(range(5))" and call.status == "completed"
    assert call.outputs is not None and call.outputs[0].logs == "10"
    assert response.output_text == "Ten." and response.status == "completed"

    events = list(
        client.responses.create(
            model="synthetic",
            input="responses two",
            tools=[{"type": "code_interpreter", "container": {"type": "auto"}}],
            max_output_tokens=400,
            stream=True,
            extra_headers=script_header(script),
        )
    )
    types = [e.type for e in events]
    order = [
        "response.code_interpreter_call.in_progress",
        "response.code_interpreter_call_code.delta",
        "response.code_interpreter_call_code.done",
        "response.code_interpreter_call.interpreting",
        "response.code_interpreter_call.completed",
    ]
    assert [t for t in types if t.startswith("response.code_interpreter")] == order
    done = [e for e in events if e.type == "response.output_item.done" and e.item.type == "code_interpreter_call"]
    assert done and done[0].item.outputs[0].logs == "10"
    assert types[-1] == "response.completed"


def test_responses_without_the_tool_asked_does_not_run_it(server: str) -> None:
    """A Responses request gets the built-in tools it names, and only those."""
    r = httpx.post(
        f"{server}/v1/responses",
        json={"input": "no tools", "max_output_tokens": 200},
        headers=script_header(python_call("1 + 1") + final("two")),
        timeout=60,
    )
    assert r.status_code == 200, r.text
    assert [item["type"] for item in r.json()["output"]] != ["reasoning", "code_interpreter_call", "message"]
    assert "code_interpreter_call" not in r.text
    off = httpx.post(f"{server}/v1/responses", json={"input": "x", "tools": [{"type": "web_search"}]}, timeout=60)
    assert off.status_code == 400 and "edgeoss serve --tools browser" in off.json()["error"]["message"]


@pytest.fixture(scope="module")
def browsing(tiny_gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A server with the browser on, searching the imitation SearXNG of tests/support/local_web.py;
    private addresses allowed (the test-only setting: everything here is on 127.0.0.1)."""
    from local_web import local_web

    log = tmp_path_factory.mktemp("browsing") / "server.log"
    with local_web() as (site, _), running_server(
        tiny_gguf,
        "--parallel", "1", "--ctx", "16384", "--tools", "browser",
        "--browser-search", site, "--browser-allow-private",
        log=log,
    ) as url:  # fmt: skip
        yield url, site


def browser_call(function: str, arguments: str, thought: str = "Look it up.") -> str:
    return (
        f"<|channel|>analysis<|message|>{thought}<|end|>"
        f"<|start|>assistant to=browser.{function}<|channel|>analysis code<|message|>{arguments}<|call|>"
    )


def test_search_then_open_then_a_cited_answer(browsing: tuple[str, str]) -> None:
    server, site = browsing
    script = (
        browser_call("search", '{"query": "moon distance"}')
        + browser_call("open", '{"id": 0}', "Open the first result.")
        + final("About 384,400 km 【1†L4-L5】.")
    )
    reply = chat(server, script, first="How far is the Moon?", max_tokens=600)
    message = reply["choices"][0]["message"]  # type: ignore[index]
    activity = message["edgeoss"]["tool_activity"]
    assert [a["tool"] for a in activity] == ["browser.search", "browser.open"]
    assert activity[0]["output"].startswith("[0] moon distance") and "【0†The Moon" in activity[0]["output"]
    assert activity[1]["output"].startswith(f"[1] The Moon ({site}/moon)") and "384,400 km" in activity[1]["output"]
    # The citation is the page's link, and the message says where it stands.
    assert message["content"] == f"About 384,400 km ([{site.removeprefix('http://')}]({site}/moon))."
    (annotation,) = message["annotations"]
    assert annotation["type"] == "url_citation"
    cited = annotation["url_citation"]
    assert cited["url"] == f"{site}/moon" and cited["title"] == "The Moon"
    assert message["content"][cited["start_index"] : cited["end_index"]].startswith(
        f"([{site.removeprefix('http://')}]"
    )


def test_responses_reports_web_search_calls(browsing: tuple[str, str]) -> None:
    server, _ = browsing
    client = openai.OpenAI(base_url=f"{server}/v1", api_key="none")
    script = browser_call("search", '{"query": "mars"}') + final("Mars is the fourth planet.")
    events = list(
        client.responses.create(
            model="synthetic",
            input="responses browse",
            tools=[{"type": "web_search"}],
            max_output_tokens=400,
            stream=True,
            extra_headers=script_header(script),
        )
    )
    types = [e.type for e in events if e.type.startswith("response.web_search_call")]
    assert types == [
        "response.web_search_call.in_progress",
        "response.web_search_call.searching",
        "response.web_search_call.completed",
    ]
    final_response = events[-1].response
    call = next(item for item in final_response.output if item.type == "web_search_call")
    assert call.status == "completed" and call.action.type == "search" and call.action.query == "mars"
    assert final_response.output_text == "Mars is the fourth planet."


def test_responses_streams_each_citation_as_an_annotation(browsing: tuple[str, str]) -> None:
    """A search result cited by its line resolves to that result's page (openai SDK, streaming)."""
    server, site = browsing
    client = openai.OpenAI(base_url=f"{server}/v1", api_key="none")
    script = browser_call("search", '{"query": "moon distance"}') + final("Far【0†L4】, and 【5†L1】.")
    events = list(
        client.responses.create(
            model="synthetic",
            input="responses cite",
            tools=[{"type": "web_search"}],
            max_output_tokens=400,
            stream=True,
            extra_headers=script_header(script),
        )
    )
    added = [e for e in events if e.type == "response.output_text.annotation.added"]
    assert len(added) == 1 and added[0].annotation_index == 0
    final_response = events[-1].response
    message = next(item for item in final_response.output if item.type == "message")
    (part,) = message.content
    (annotation,) = part.annotations
    assert annotation.type == "url_citation" and annotation.url == f"{site}/moon" and annotation.title == "The Moon"
    assert (
        part.text[annotation.start_index : annotation.end_index] == f"([{site.removeprefix('http://')}]({site}/moon))"
    )
    assert part.text.endswith(", and 【5†L1】.")  # no page 5: the mark stays as the model wrote it
    streamed = added[0].annotation
    streamed = streamed.model_dump() if hasattr(streamed, "model_dump") else streamed
    assert streamed == annotation.model_dump()  # the event carries the annotation the message ends with


def test_with_the_browser_off_a_browser_call_fetches_nothing(server: str) -> None:
    """The python-only server has no browser: a call to it is answered by nothing, fetches nothing."""
    reply = chat(server, browser_call("open", '{"id": "http://192.168.1.1/"}') + final("x"), first="router")
    assert "edgeoss" not in reply["choices"][0]["message"]  # type: ignore[index]
