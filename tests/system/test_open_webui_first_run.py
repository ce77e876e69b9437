"""Open WebUI's first run against `edgeoss serve demo`, replayed: the request
shapes it sends with its default settings (about 36 tool definitions, a system
prompt, `stream_options`, its reasoning effort inside Ollama's options) and its
background requests (title, tags, follow-ups: no token limit) sent around the
user's own chat. The first "Hi" must be answered in full, and must not wait
behind the background requests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

import needs_llama
from server_process import free_port, wait_ready

SYSTEM = "You are a helpful assistant. Today is a good day. Answer in the user's language."


def open_webui_tools(n: int = 36) -> list[dict[str, object]]:
    """Tool definitions of the size Open WebUI's defaults send (web search, image, memory, notes, ...)."""
    tools = []
    for i in range(n):
        tools.append(
            {
                "type": "function",
                "function": {
                    "name": f"tool_{i}_search_and_summarise",
                    "description": "Search the user's knowledge, notes, chats and the web for the query, then "
                    "return the most relevant passages with their sources and dates, ranked by relevance. Use it "
                    "whenever the user asks about something that may be in their files or that changes over time.",
                    "parameters": {
                        "type": "object",
                        "properties": {
                            "query": {"type": "string", "description": "What to look for, in the user's words."},
                            "limit": {"type": "integer", "description": "How many results, 1 to 20."},
                            "since": {"type": "string", "description": "Only results after this ISO date."},
                            "collection": {"type": "string", "description": "A knowledge collection to search in."},
                            "language": {"type": "string", "description": "Answer language, as a BCP 47 tag."},
                        },
                        "required": ["query"],
                    },
                },
            }
        )
    return tools


def background(kind: str) -> dict[str, object]:
    """One of Open WebUI's background tasks: no token limit, streaming off."""
    task = {"title": "Generate a concise, 3-5 word title", "tags": "Generate 1-3 broad tags", "follow": "Suggest"}[kind]
    return {
        "model": "demo",
        "messages": [{"role": "user", "content": f"### Task:\n{task} for this chat:\nUSER: Hi"}],
        "stream": False,
    }


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    needs_llama.llama_cpp()
    home = tmp_path_factory.mktemp("home")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgeoss", "serve", "demo", "--port", str(port)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "EDGEOSS_HOME": str(home)},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc, 180)
        yield url
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def test_the_demo_fits_what_open_webui_sends(demo: str) -> None:
    """Found from outside: the very first "Hi" got a 400 context error (4096 tokens per sequence)."""
    body = {
        "model": "demo",
        "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Hi"}],
        "tools": open_webui_tools(),
        "stream": True,
        "options": {"reasoning_effort": "low", "temperature": 0.8},
    }
    with httpx.stream("POST", demo + "/api/chat", json=body, timeout=120) as r:
        assert r.status_code == 200, r.read()
        lines = [json.loads(line) for line in r.iter_lines() if line]
    assert lines[-1]["done"] is True and lines[-1]["prompt_eval_count"] > 4096  # more than the old context
    openai_body = {
        "model": "demo",
        "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Hi"}],
        "tools": open_webui_tools(),
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    with httpx.stream("POST", demo + "/v1/chat/completions", json=openai_body, timeout=120) as r:
        assert r.status_code == 200, r.read()
        chunks = [line for line in r.iter_lines() if line.startswith("data: ")]
    assert chunks[-1] == "data: [DONE]" and '"usage"' in chunks[-2]


@pytest.mark.parametrize("route", ["/api/chat", "/v1/chat/completions"])
def test_the_users_chat_does_not_wait_behind_background_requests(demo: str, route: str) -> None:
    results: dict[str, float] = {}
    started = time.monotonic()

    def run(kind: str) -> None:
        r = httpx.post(demo + route, json=background(kind), timeout=300)
        assert r.status_code == 200
        results[kind] = time.monotonic() - started

    threads = [threading.Thread(target=run, args=(k,)) for k in ("title", "tags", "follow")]
    for t in threads:
        t.start()
    time.sleep(0.5)  # the background requests are running
    user = {
        "model": "demo",
        "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Hi"}],
        "tools": open_webui_tools(),
        "stream": True,
    }
    if route.startswith("/v1"):
        user["stream_options"] = {"include_usage": True}
    sent = time.monotonic()
    first = None
    with httpx.stream("POST", demo + route, json=user, timeout=300) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line and first is None:
                first = time.monotonic() - sent
    answered = time.monotonic() - started
    for t in threads:
        t.join()
    assert first is not None
    # The user's reply starts while the background requests still run: it had a slot of its own.
    assert first < min(results.values()) - (sent - started), (first, results)
    assert answered > 0
