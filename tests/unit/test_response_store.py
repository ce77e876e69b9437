"""The Responses store on its own: a damaged file is set aside (nothing deleted)
and a fresh store starts; the size bound drops the oldest; conversations come
back as they went in; unfinished background responses are failed on open."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from edgeoss import harmony
from edgeoss.server.response_store import Conversation, ResponseStore

CONVERSATION = Conversation(
    [
        harmony.Turn("user", "Weather?"),
        harmony.Turn(
            "assistant", "", "Need it.", (harmony.ToolCall("get_weather", '{"city": "Oslo"}', "call_1", "commentary"),)
        ),
        harmony.Turn("tool", '{"temp": 3}', name="get_weather"),
        harmony.Turn("assistant", "3 C.", ""),
    ],
    "Be brief.",
)


def response(rid: str, status: str = "completed", text: str = "") -> dict[str, Any]:
    return {"id": rid, "object": "response", "status": status, "output": [], "text": text}


def test_a_conversation_comes_back_as_it_went_in(tmp_path: Path) -> None:
    store = ResponseStore(tmp_path / "r.sqlite3")
    store.put(response("resp_a"), "k", [{"id": "msg_1"}], CONVERSATION, [{"type": "x", "sequence_number": 0}])
    store.close()
    again = ResponseStore(tmp_path / "r.sqlite3")
    assert again.conversation("resp_a", "k") == CONVERSATION
    assert again.input_items("resp_a", "k") == [{"id": "msg_1"}]
    assert again.events("resp_a", "k") == [{"type": "x", "sequence_number": 0}]
    assert again.get("resp_a", "other") is None and not again.delete("resp_a", "other")
    assert again.delete("resp_a", "k") and again.get("resp_a", "k") is None


def test_a_damaged_file_is_set_aside_not_deleted(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite3"
    path.write_bytes(b"SQLite format 3\x00" + b"\xff" * 5000)
    store = ResponseStore(path)
    store.put(response("resp_b"), "", [], None)
    assert store.get("resp_b", "") is not None
    (aside,) = tmp_path.glob("r.sqlite3.damaged-*")
    assert aside.read_bytes().endswith(b"\xff" * 100)


def test_unfinished_background_responses_are_failed_on_open(tmp_path: Path) -> None:
    store = ResponseStore(tmp_path / "r.sqlite3")
    store.put(response("resp_q", "queued"), "", [], None)
    store.put(response("resp_d", "completed"), "", [], None)
    store.close()
    again = ResponseStore(tmp_path / "r.sqlite3")
    failed = again.get("resp_q", "")
    assert failed is not None and failed["status"] == "failed" and "stopped" in failed["error"]["message"]
    assert (again.get("resp_d", "") or {})["status"] == "completed"


def test_the_oldest_go_first_past_the_size_bound(tmp_path: Path) -> None:
    store = ResponseStore(tmp_path / "r.sqlite3", max_bytes=3000)
    for i in range(6):
        store.put(response(f"resp_{i}", text="x" * 900), "", [], None)
        time.sleep(0.01)
    kept = [i for i in range(6) if store.get(f"resp_{i}", "") is not None]
    assert kept == [4, 5] or kept == [3, 4, 5], kept
    assert 0 < store.count() <= 3


def test_expired_responses_are_gone(tmp_path: Path) -> None:
    store = ResponseStore(tmp_path / "r.sqlite3", ttl_s=0.2)
    store.put(response("resp_e"), "", [], None)
    assert store.get("resp_e", "") is not None
    time.sleep(0.3)
    assert store.get("resp_e", "") is None and store.expire() == 1
