"""An engine that fails mid-reply (a worker lost, say) ends each API's stream with that
API's own error, after what was already sent: not a dropped connection, not a [DONE]."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from edgeoss import harmony
from edgeoss.errors import ApiError
from edgeoss.runtime.reply import Reply
from edgeoss.server.api import ollama, openai_chat, responses

FAILURE = ApiError(503, "the worker at 10.0.0.2:50052 was lost mid-run", "server_error", code="engine_failed")


async def _events() -> AsyncIterator[harmony.Event]:
    yield harmony.Event("content", "Hel")
    raise FAILURE


def _collect(stream: AsyncIterator[bytes]) -> list[bytes]:
    async def run() -> list[bytes]:
        return [chunk async for chunk in stream]

    return asyncio.run(run())


def _sse(chunks: list[bytes]) -> list[object]:
    lines = b"".join(chunks).decode().splitlines()  # Responses' events carry an "event:" line too
    return [json.loads(line[6:]) if line[6:] != "[DONE]" else "[DONE]" for line in lines if line.startswith("data: ")]


def test_openai_chat_ends_with_an_error_event() -> None:
    events = _sse(_collect(openai_chat.stream(_events(), Reply(), "m", include_usage=True)))
    assert events[1]["choices"][0]["delta"]["content"] == "Hel"  # type: ignore[index]
    assert events[-1] == {
        "error": {"message": FAILURE.message, "type": "server_error", "param": None, "code": "engine_failed"}
    }
    assert "[DONE]" not in events


def test_responses_ends_with_response_failed() -> None:
    builder = responses.Builder({"model": "m", "input": "hi"}, "m")
    chunks = _collect(responses.stream(_events(), Reply(), builder, None, None, "owner"))  # type: ignore[arg-type]
    events = _sse(chunks)
    last = events[-1]
    assert isinstance(last, dict) and last["type"] == "response.failed"
    assert last["response"]["status"] == "failed"
    assert last["response"]["error"] == {"code": "engine_failed", "message": FAILURE.message}
    assert not any(isinstance(e, dict) and e.get("type") == "response.completed" for e in events)


def test_ollama_streams_end_with_an_error_line() -> None:
    for stream in (
        ollama.chat_stream(_events(), Reply(), "m", False, 0.0),
        ollama.generate_stream(_events(), Reply(), "m", False, 0.0),
    ):
        lines = [json.loads(line) for line in b"".join(_collect(stream)).splitlines()]
        assert lines[0]["done"] is False
        assert lines[-1] == {"error": FAILURE.message}
        assert not any(line.get("done") for line in lines)
