"""MCP tools through a real stdio MCP server (tests/support/mcp_server.py, the mcp
SDK's own server) started as a child: the hub lists and calls its tools, keeps
to the allowlist, and the child ends with the hub; through the real server,
a forced script calls `demo.add` and goes on to answer, in Chat Completions
and in Responses (mcp_call items)."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

import needs_llama
from edgeoss import harmony
from server_process import running_server, script_header

pytest.importorskip("mcp")
from edgeoss.tools.mcp_tools import McpHub, load

SERVER = Path(__file__).resolve().parents[1] / "support" / "mcp_server.py"


def config(tmp_path: Path, allow: list[str] | None = ("add", "shout"), pid_file: Path | None = None) -> Path:  # type: ignore[assignment]
    entry: dict[str, object] = {
        "command": sys.executable,
        "args": [str(SERVER), *([str(pid_file)] if pid_file else [])],
    }
    if allow is not None:
        entry["tools"] = list(allow)
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({"mcpServers": {"demo": entry}}))
    return path


def test_the_hub_lists_and_calls_only_allowed_tools_and_its_child_ends(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    hub = McpHub(load(config(tmp_path, pid_file=pid_file)))
    hub.start()
    try:
        (namespace,) = hub.namespaces()
        assert namespace.name == "demo" and [t.name for t in namespace.tools] == ["add", "shout"]
        assert namespace.tools[0].parameters and namespace.tools[0].parameters["required"] == ["a", "b"]
        assert hub.call("demo", "add", '{"a": 2, "b": 40}') == "42"
        assert hub.call("demo", "shout", '{"text": "hi"}') == "HI"
        refused = hub.call("demo", "delete_everything", "{}")
        assert "not a tool offered here" in refused and "deleted" not in refused
        assert hub.call("demo", "add", '{"a": "x"}').startswith("error:")  # the server's own validation
        assert hub.call("demo", "add", "not json").startswith("the arguments are not JSON")
        child = psutil.Process(int(pid_file.read_text()))
        assert child.is_running()
    finally:
        hub.close()
    deadline = time.monotonic() + 10
    while child.is_running() and child.status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE, "the stdio server outlived the hub"


def test_a_server_that_cannot_start_is_left_out_and_says_why(tmp_path: Path) -> None:
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({"mcpServers": {"gone": {"command": "/nonexistent/server"}}}))
    hub = McpHub(load(path))
    hub.start()
    try:
        assert hub.namespaces() == ()
        assert "not available" in hub.call("gone", "x", "{}")
    finally:
        hub.close()


def mcp_call(tool: str, arguments: str) -> str:
    return (
        "<|channel|>analysis<|message|>Use the tool.<|end|>"
        f"<|start|>assistant to=demo.{tool}<|channel|>commentary <|constrain|>json<|message|>{arguments}<|call|>"
    )


RECORDED: list[Path] = []


@pytest.fixture(scope="module")
def server(tiny_gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """demo (runs its allowed tools) and guarded (each call waits for the user's approval)."""
    needs_llama.llama_cpp()
    folder = tmp_path_factory.mktemp("mcp")
    log = folder / "server.log"
    record = folder / "recorded.txt"
    record.write_text("")
    RECORDED[:] = [record]
    path = config(folder)
    servers = json.loads(path.read_text())
    servers["mcpServers"]["guarded"] = {
        "command": sys.executable,
        "args": [str(SERVER)],
        "env": {"RECORD": str(record)},
        "tools": ["record"],
        "approval": "always",
    }
    path.write_text(json.dumps(servers))
    with running_server(tiny_gguf, "--parallel", "1", "--ctx", "8192", "--mcp", str(path), log=log) as url:
        yield url


def test_the_model_calls_an_mcp_tool_and_goes_on(server: str) -> None:
    body = {"messages": [{"role": "user", "content": "add them"}], "max_tokens": 300}
    script = mcp_call("add", '{"a": 20, "b": 22}') + "<|channel|>final<|message|>42.<|return|>"
    r = httpx.post(f"{server}/v1/chat/completions", json=body, headers=script_header(script), timeout=60)
    assert r.status_code == 200, r.text
    message = r.json()["choices"][0]["message"]
    assert message["content"] == "42."
    assert message["edgeoss"]["tool_activity"] == [{"tool": "demo.add", "input": '{"a": 20, "b": 22}', "output": "42"}]


def test_responses_reports_mcp_calls(server: str) -> None:
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=f"{server}/v1", api_key="none")
    script = mcp_call("shout", '{"text": "hello"}') + "<|channel|>final<|message|>Done.<|return|>"
    response = client.responses.create(
        model="synthetic",
        input="shout it",
        tools=[{"type": "mcp", "server_label": "demo", "require_approval": "never"}],
        max_output_tokens=300,
        extra_headers=script_header(script),
    )
    kinds = [item.type for item in response.output]
    assert "mcp_list_tools" in kinds and "mcp_call" in kinds, kinds
    listed = next(item for item in response.output if item.type == "mcp_list_tools")
    assert listed.server_label == "demo" and [t.name for t in listed.tools] == ["add", "shout"]
    call = next(item for item in response.output if item.type == "mcp_call")
    assert (call.server_label, call.name, call.arguments, call.output) == (
        "demo",
        "shout",
        '{"text": "hello"}',
        "HELLO",
    )
    assert response.output_text == "Done."
    events = list(
        client.responses.create(
            model="synthetic",
            input="shout it again",
            tools=[{"type": "mcp", "server_label": "demo"}],
            max_output_tokens=300,
            stream=True,
            extra_headers=script_header(script),
        )
    )
    numbers = [e.sequence_number for e in events]
    assert numbers == sorted(numbers) == list(range(len(events)))
    types = [e.type for e in events]
    for kind in ("response.mcp_list_tools.completed", "response.mcp_call.in_progress", "response.mcp_call.completed"):
        assert kind in types, types
    unknown = httpx.post(
        f"{server}/v1/responses",
        json={
            "input": "x",
            "tools": [{"type": "mcp", "server_label": "other", "server_url": "https://evil.example/mcp"}],
        },
        timeout=30,
    )
    assert unknown.status_code == 400 and "configured with --mcp" in unknown.json()["error"]["message"]


def test_the_developer_message_offers_the_servers_tools() -> None:
    namespace = harmony.Namespace("demo", "Tools of the MCP server demo.", (harmony.Tool("add", "Add two integers."),))
    text = harmony.encoding().decode(
        harmony.render([harmony.Turn("user", "x")], harmony.RenderOptions(namespaces=(namespace,)))
    )
    assert "## demo" in text and "namespace demo {" in text and "type add = " in text


def test_the_command_lists_and_calls_what_the_model_would_get(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from edgeoss.cli import app

    runner = CliRunner()
    path = config(tmp_path, allow=["add"])
    listed = runner.invoke(app, ["tool", "mcp", "list", str(path), "--json"])
    assert listed.exit_code == 0 and json.loads(listed.output) == {"demo": {"tools": ["add"]}}
    called = runner.invoke(app, ["tool", "mcp", "call", str(path), "demo.add", '{"a": 1, "b": 2}'])
    assert called.exit_code == 0 and called.output.strip() == "3"


def guarded_call(text: str) -> str:
    return (
        "<|channel|>analysis<|message|>Record it.<|end|>"
        "<|start|>assistant to=guarded.record<|channel|>commentary <|constrain|>json"
        f'<|message|>{{"text": "{text}"}}<|call|>'
    )


def test_a_tool_that_needs_approval_waits_for_the_users_yes(server: str) -> None:
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=f"{server}/v1", api_key="none")
    record = RECORDED[0]
    tools = [{"type": "mcp", "server_label": "guarded", "require_approval": "always"}]
    asked = client.responses.create(
        model="synthetic", input="record yes", tools=tools, max_output_tokens=300,
        extra_headers=script_header(guarded_call("yes")),
    )  # fmt: skip
    request = next(item for item in asked.output if item.type == "mcp_approval_request")
    assert (request.server_label, request.name, request.arguments) == ("guarded", "record", '{"text": "yes"}')
    assert not [item for item in asked.output if item.type == "mcp_call"]
    assert record.read_text() == ""  # nothing ran before the user said yes
    approved = client.responses.create(
        model="synthetic",
        previous_response_id=asked.id,
        input=[{"type": "mcp_approval_response", "approval_request_id": request.id, "approve": True}],
        tools=tools,
        max_output_tokens=300,
        extra_headers=script_header("<|channel|>final<|message|>Recorded.<|return|>"),
    )
    assert approved.output_text == "Recorded." and record.read_text() == "yes\n"
    # Declined: it does not run.
    asked = client.responses.create(
        model="synthetic", input="record no", tools=tools, max_output_tokens=300,
        extra_headers=script_header(guarded_call("no")),
    )  # fmt: skip
    request = next(item for item in asked.output if item.type == "mcp_approval_request")
    declined = client.responses.create(
        model="synthetic",
        previous_response_id=asked.id,
        input=[{"type": "mcp_approval_response", "approval_request_id": request.id, "approve": False}],
        tools=tools,
        max_output_tokens=300,
        extra_headers=script_header("<|channel|>final<|message|>Not recorded.<|return|>"),
    )
    assert declined.output_text == "Not recorded." and record.read_text() == "yes\n"


def test_an_api_that_cannot_ask_never_runs_a_tool_that_needs_approval(server: str) -> None:
    body = {"messages": [{"role": "user", "content": "record chat"}], "max_tokens": 300}
    script = guarded_call("chat") + "<|channel|>final<|message|>Could not.<|return|>"
    r = httpx.post(f"{server}/v1/chat/completions", json=body, headers=script_header(script), timeout=60)
    assert r.status_code == 200, r.text
    (activity,) = r.json()["choices"][0]["message"]["edgeoss"]["tool_activity"]
    assert "approval" in activity["output"] and "did not run" in activity["output"]
    assert "chat" not in RECORDED[0].read_text()
