"""The Responses API's store and background mode, through a real server process
and the openai SDK: a stored response survives a restart (fetched, continued
with previous_response_id, its input items listed); store: false leaves
nothing on disk; expiry; delete; one key never sees another's; background
responses poll to completion, cancel mid-way, resume a cut stream from a
sequence number, and a restart marks an unfinished one failed."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import needs_llama
from server_process import HERE, free_port, script_header, wait_ready

needs_llama.llama_cpp()
openai = pytest.importorskip("openai")

ANSWER = "<|channel|>analysis<|message|>Easy.<|end|><|start|>assistant<|channel|>final<|message|>Four.<|return|>"
LONG = "<|channel|>analysis<|message|>" + "thinking " * 400 + "<|end|>"
THEN_ANSWER = LONG + "<|start|>assistant<|channel|>final<|message|>Four.<|return|>"
# The forced script repeats its last token: this one thinks until the token budget. (Kept short:
# a request header over 16 KiB is refused by the HTTP parser when it arrives in pieces.)
ENDLESS = "<|channel|>analysis<|message|> thinking"


class Server:
    """The scripted server as a process of its own, started and stopped at will."""

    def __init__(self, model: Path, home: Path, **env: str) -> None:
        self.model, self.home, self.env = model, home, env
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self) -> Server:
        port = free_port()
        env = {**os.environ, "EDGEOSS_HOME": str(self.home), "PYTHONUNBUFFERED": "1", **self.env}
        cmd = [sys.executable, str(HERE / "scripted_server.py"), str(self.model), str(port), "--parallel", "2"]
        # Its output to a file: a pipe nobody reads would stop the server once it filled.
        self.log = open(self.home.parent / f"server-{port}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{port}"
        wait_ready(self.url, self.proc, 120)
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)
        self.proc.wait(timeout=30)
        self.log.close()

    def client(self, key: str = "key-a") -> openai.OpenAI:
        return openai.OpenAI(base_url=self.url + "/v1", api_key=key, max_retries=0, timeout=60)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def server(tiny_gguf: Path, home: Path) -> Iterator[Server]:
    s = Server(tiny_gguf, home).start()
    yield s
    if s.proc is not None and s.proc.poll() is None:
        s.stop()


def db_rows(home: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(home / "data" / "responses.sqlite3") as db:
        return db.execute("SELECT id, status FROM responses").fetchall()


def test_a_stored_response_survives_a_restart(server: Server, home: Path) -> None:
    client = server.client()
    first = client.responses.create(
        model="synthetic", input="What is 2+2?", extra_headers=script_header(ANSWER), instructions="Be brief."
    )
    assert first.output_text == "Four."
    server.stop()
    server.start()
    client = server.client()
    again = client.responses.retrieve(first.id)
    assert again.id == first.id and again.output_text == "Four." and again.status == "completed"
    items = client.responses.input_items.list(first.id)
    assert [i.type for i in items.data] == ["message"] and items.data[0].content[0].text == "What is 2+2?"
    follow = client.responses.create(
        model="synthetic",
        input="And 3+3?",
        previous_response_id=first.id,
        extra_headers=script_header("<|channel|>final<|message|>Six.<|return|>"),
    )
    assert follow.output_text == "Six." and follow.usage is not None
    fresh = client.responses.create(
        model="synthetic", input="And 3+3?", extra_headers=script_header("<|channel|>final<|message|>Six.<|return|>")
    )
    assert fresh.usage is not None and follow.usage.input_tokens > fresh.usage.input_tokens + 5, "history rendered"


def test_store_false_leaves_nothing_on_disk(server: Server, home: Path) -> None:
    reply = server.client().responses.create(
        model="synthetic", input="secret", store=False, extra_headers=script_header(ANSWER)
    )
    assert reply.output_text == "Four." and reply.store is False
    assert db_rows(home) == []
    raw = b"".join(p.read_bytes() for p in (home / "data").glob("responses.sqlite3*"))
    assert b"secret" not in raw and b"Four." not in raw
    with pytest.raises(openai.NotFoundError):
        server.client().responses.retrieve(reply.id)


def test_delete_and_another_keys_view(server: Server) -> None:
    mine, theirs = server.client("key-a"), server.client("key-b")
    reply = mine.responses.create(model="synthetic", input="Hi", extra_headers=script_header(ANSWER))
    with pytest.raises(openai.NotFoundError):
        theirs.responses.retrieve(reply.id)
    with pytest.raises(openai.NotFoundError):
        theirs.responses.delete(reply.id)
    with pytest.raises(openai.BadRequestError):
        theirs.responses.create(model="synthetic", input="x", previous_response_id=reply.id)
    mine.responses.delete(reply.id)
    with pytest.raises(openai.NotFoundError):
        mine.responses.retrieve(reply.id)
    with pytest.raises(openai.NotFoundError):
        mine.responses.delete(reply.id)


def test_responses_expire(tiny_gguf: Path, home: Path) -> None:
    server = Server(tiny_gguf, home, EDGEOSS_RESPONSES_TTL="2").start()
    try:
        client = server.client()
        reply = client.responses.create(model="synthetic", input="Hi", extra_headers=script_header(ANSWER))
        assert client.responses.retrieve(reply.id).id == reply.id
        time.sleep(2.5)
        with pytest.raises(openai.NotFoundError):
            client.responses.retrieve(reply.id)
    finally:
        server.stop()


def poll(client: openai.OpenAI, response_id: str, until: tuple[str, ...], seconds: float = 60) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        found = client.responses.retrieve(response_id)
        if found.status in until:
            return found
        assert time.monotonic() < deadline, found.status
        time.sleep(0.1)


def test_background_returns_at_once_and_polls_to_completion(server: Server) -> None:
    client = server.client()
    started = client.responses.create(
        model="synthetic", input="2+2?", background=True, extra_headers=script_header(THEN_ANSWER)
    )
    assert started.status in ("queued", "in_progress") and started.background is True
    done = poll(client, started.id, ("completed",))
    assert done.output_text == "Four." and [i.type for i in done.output] == ["reasoning", "message"]


def test_background_cancel_stops_it(server: Server) -> None:
    client = server.client()
    started = client.responses.create(  # it would think for 1,500 tokens, several seconds
        model="synthetic", input="think", background=True, max_output_tokens=1500, extra_headers=script_header(ENDLESS)
    )
    poll(client, started.id, ("in_progress",))
    cancelled = client.responses.cancel(started.id)
    assert cancelled.status == "cancelled"
    assert client.responses.retrieve(started.id).status == "cancelled"
    health = httpx.get(server.url + "/health").json()
    assert health["status"] == "ready"
    # the slot is free again: a plain request is answered at once
    reply = client.responses.create(model="synthetic", input="Hi", extra_headers=script_header(ANSWER))
    assert reply.output_text == "Four."


def events_of(lines: Iterator[str], stop_after: int | None = None) -> list[dict[str, Any]]:
    out = []
    for line in lines:
        if line.startswith("data: "):
            out.append(json.loads(line[6:]))
            if stop_after is not None and len(out) >= stop_after:
                break
    return out


def test_a_background_stream_resumes_after_a_cut(server: Server) -> None:
    body = {"model": "synthetic", "input": "2+2?", "background": True, "stream": True}
    headers = {"Authorization": "Bearer key-a", **script_header(THEN_ANSWER)}
    with httpx.stream("POST", server.url + "/v1/responses", json=body, headers=headers, timeout=60) as r:
        first = events_of(r.iter_lines(), stop_after=5)  # then the client goes away
    response_id = first[0]["response"]["id"]
    last = first[-1]["sequence_number"]
    url = f"{server.url}/v1/responses/{response_id}?stream=true&starting_after={last}"
    with httpx.stream("GET", url, headers=headers, timeout=60) as r:
        rest = events_of(r.iter_lines())
    numbers = [e["sequence_number"] for e in first + rest]
    assert numbers == list(range(len(numbers))), "every event once, in order, none lost at the cut"
    assert rest[-1]["type"] == "response.completed"
    text = "".join(e["delta"] for e in first + rest if e["type"] == "response.output_text.delta")
    assert text == "Four."
    # after the run, the whole stream can be read again
    with httpx.stream("GET", url.replace(f"starting_after={last}", "starting_after=-1"), headers=headers) as r:
        assert [e["sequence_number"] for e in events_of(r.iter_lines())] == numbers


def test_a_restart_marks_an_unfinished_background_response_failed(server: Server, home: Path) -> None:
    client = server.client()
    started = client.responses.create(
        model="synthetic",
        input="think",
        background=True,
        max_output_tokens=1500,
        extra_headers=script_header(ENDLESS),
    )
    poll(client, started.id, ("in_progress",))
    server.stop(signal.SIGKILL)  # no chance to say anything
    assert dict(db_rows(home))[started.id] in ("queued", "in_progress")
    server.start()
    found = server.client().responses.retrieve(started.id)
    assert found.status == "failed" and found.error is not None and "stopped" in found.error.message


def test_bad_requests_are_named(server: Server) -> None:
    for body, param in (
        ({"input": "x", "background": True, "store": False}, "background"),
        ({"input": "x", "store": "no"}, "store"),
        ({"input": "x", "include": "all"}, "include"),
    ):
        r = httpx.post(server.url + "/v1/responses", json={"model": "synthetic", **body})
        assert r.status_code == 400 and r.json()["error"]["param"] == param, r.text
    r = httpx.get(server.url + "/v1/responses/resp_nothing/input_items?limit=500")
    assert r.status_code == 404
    r = httpx.get(server.url + "/v1/responses/resp_x?stream=true&starting_after=abc")
    assert r.status_code == 400
