"""The Responses API's store: stored responses survive a restart.

One SQLite file in the data folder (`responses.sqlite3`; EDGEOSS_HOME moves
it with everything else). Each row is one response: the response object as
GET returns it, its input items (GET .../input_items), the conversation it
ends (for `previous_response_id`, harmony turns), and, for a background
response, the stream events it sent (for a resumed stream). A row belongs to
the API key that created it (a hash): another key neither sees nor deletes
it. Rows expire (30 days, EDGEOSS_RESPONSES_TTL) and the whole is bounded in
size (the oldest go first). `store: false` writes nothing.

Crash safety: SQLite's journal (WAL) makes each write whole or absent; a
background response that was running when the server stopped is marked
`failed` with the reason when the store next opens, never left "in
progress" and never `completed`. A damaged file is set aside under a new
name (nothing deleted) and a fresh store is started, with a warning.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeoss import constants, harmony

log = logging.getLogger(__name__)

FILENAME = "responses.sqlite3"
MAX_BYTES = 512 << 20
"""All stored responses together; past it the oldest are deleted."""
UNFINISHED = ("queued", "in_progress")
STOPPED_ERROR = {"code": "server_error", "message": "the server stopped before this response finished"}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    created REAL NOT NULL,
    expires REAL NOT NULL,
    status TEXT NOT NULL,
    response TEXT NOT NULL,
    input_items TEXT NOT NULL,
    conversation TEXT,
    events TEXT,
    size INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS responses_created ON responses (created);
"""


@dataclass
class Conversation:
    """What a response leaves for the next one (`previous_response_id`)."""

    turns: list[harmony.Turn]
    instructions: str


def _turn_json(turn: harmony.Turn) -> dict[str, Any]:
    return {**dataclasses.asdict(turn), "tool_calls": [dataclasses.asdict(c) for c in turn.tool_calls]}


def _turn_of(data: dict[str, Any]) -> harmony.Turn:
    calls = tuple(harmony.ToolCall(**c) for c in data.get("tool_calls") or [])
    return harmony.Turn(
        str(data["role"]),
        str(data.get("content", "")),
        str(data.get("reasoning", "")),
        calls,
        str(data.get("name", "")),
    )


def conversation_json(conversation: Conversation) -> str:
    return json.dumps({"turns": [_turn_json(t) for t in conversation.turns], "instructions": conversation.instructions})


def conversation_of(text: str) -> Conversation:
    data = json.loads(text)
    return Conversation([_turn_of(t) for t in data["turns"]], str(data.get("instructions", "")))


class ResponseStore:
    def __init__(self, path: Path, ttl_s: float | None = None, max_bytes: int = MAX_BYTES) -> None:
        self.path = path
        self.ttl_s = ttl_s if ttl_s is not None else constants.responses_ttl_s()
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        if str(path) != ":memory:":
            path.parent.mkdir(parents=True, exist_ok=True)
        self._db = self._open()
        with self._lock:
            stopped = self._db.execute(
                f"SELECT id, response FROM responses WHERE status IN ({','.join('?' * len(UNFINISHED))})", UNFINISHED
            ).fetchall()
            for response_id, text in stopped:
                response = json.loads(text)
                response.update(status="failed", error=STOPPED_ERROR)
                self._db.execute(
                    "UPDATE responses SET status = 'failed', response = ? WHERE id = ?",
                    (json.dumps(response), response_id),
                )
            self._db.commit()
        if stopped:
            log.warning(
                "%d background response(s) were unfinished when the server stopped: marked failed", len(stopped)
            )
        self.expire()

    def _open(self) -> sqlite3.Connection:
        try:
            return self._connect()
        except sqlite3.DatabaseError as exc:
            aside = self.path.with_name(f"{self.path.name}.damaged-{int(time.time())}")
            self.path.replace(aside)
            for extra in ("-wal", "-shm"):
                Path(str(self.path) + extra).unlink(missing_ok=True)
            log.warning(
                "the response store %s was damaged (%s): set aside as %s; starting a new one", self.path, exc, aside
            )
            return self._connect()

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # whole transactions after a crash; the last may be lost
            db.executescript(_SCHEMA)
            db.execute("SELECT count(*) FROM responses").fetchone()
            db.execute("PRAGMA quick_check").fetchone()
        except sqlite3.DatabaseError:
            db.close()
            raise
        db.isolation_level = "DEFERRED"  # each write its own transaction, committed explicitly
        return db

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def put(
        self,
        response: dict[str, Any],
        owner: str,
        input_items: Sequence[dict[str, Any]],
        conversation: Conversation | None,
        events: Sequence[dict[str, Any]] | None = None,
    ) -> None:
        """Store (or replace) a response as it stands now."""
        row = (
            json.dumps(response),
            json.dumps(list(input_items)),
            conversation_json(conversation) if conversation is not None else None,
            json.dumps(list(events)) if events is not None else None,
        )
        size = sum(len(x) for x in row if x)
        now = time.time()
        with self._lock:
            self._db.execute(
                "INSERT INTO responses (id, owner, created, expires, status, response, input_items, conversation, "
                "events, size) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
                "status = excluded.status, response = excluded.response, conversation = excluded.conversation, "
                "events = excluded.events, size = excluded.size",
                (response["id"], owner, now, now + self.ttl_s, response["status"], *row, size),
            )
            self._db.commit()
        self.bound()

    def _row(self, response_id: str, owner: str, column: str) -> Any:
        assert column in ("response", "input_items", "conversation", "events")
        with self._lock:
            found = self._db.execute(
                f"SELECT {column} FROM responses WHERE id = ? AND owner = ? AND expires > ?",
                (response_id, owner, time.time()),
            ).fetchone()
        return None if found is None else found[0]

    def get(self, response_id: str, owner: str) -> dict[str, Any] | None:
        text = self._row(response_id, owner, "response")
        return None if text is None else dict(json.loads(text))

    def input_items(self, response_id: str, owner: str) -> list[dict[str, Any]] | None:
        text = self._row(response_id, owner, "input_items")
        return None if text is None else list(json.loads(text))

    def conversation(self, response_id: str, owner: str) -> Conversation | None:
        text = self._row(response_id, owner, "conversation")
        return None if text is None else conversation_of(text)

    def events(self, response_id: str, owner: str) -> list[dict[str, Any]] | None:
        text = self._row(response_id, owner, "events")
        return None if text is None else list(json.loads(text))

    def delete(self, response_id: str, owner: str) -> bool:
        with self._lock:
            gone = self._db.execute("DELETE FROM responses WHERE id = ? AND owner = ?", (response_id, owner)).rowcount
            self._db.commit()
        return bool(gone)

    def expire(self) -> int:
        with self._lock:
            gone = self._db.execute("DELETE FROM responses WHERE expires <= ?", (time.time(),)).rowcount
            self._db.commit()
        return int(gone)

    def bound(self) -> None:
        """The oldest rows go while the store is over its size (and expired ones always)."""
        self.expire()
        with self._lock:
            total = self._db.execute("SELECT coalesce(sum(size), 0) FROM responses").fetchone()[0]
            while total > self.max_bytes:
                oldest = self._db.execute("SELECT id, size FROM responses ORDER BY created LIMIT 1").fetchone()
                if oldest is None:
                    break
                self._db.execute("DELETE FROM responses WHERE id = ?", (oldest[0],))
                total -= oldest[1]
            self._db.commit()

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM responses").fetchone()[0])


def open_store() -> ResponseStore:
    """The server's store in the data folder; in memory, with a warning, where the folder
    cannot hold one (a read-only disk): responses then last as long as the server."""
    from edgeoss.paths import paths

    path = paths().data / FILENAME
    try:
        return ResponseStore(path)
    except (OSError, sqlite3.Error) as exc:
        log.warning("cannot keep responses in %s (%s): they are kept in memory until the server stops", path, exc)
        return ResponseStore(Path(":memory:"))
