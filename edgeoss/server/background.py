"""Background responses (`background: true`): a response that runs apart from its request.

The request returns at once with the response `queued`; the generation runs
as a task of the server's, not of the connection, so a client that goes away
loses nothing: it polls `GET /v1/responses/{id}`, or reads the stream again
from any point (`GET /v1/responses/{id}?stream=true&starting_after=N`, every
event numbered as OpenAI numbers them), and `POST .../cancel` stops it. Each
response is in the store from its first moment (`queued`), so a server that
stops under it leaves it `failed` with the reason (response_store.py), never
`completed`. The events are kept with the finished response, so a stream can
be read again after the run, or after a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from edgeoss import harmony
from edgeoss.runtime.reply import Reply
from edgeoss.server.api import responses
from edgeoss.server.response_store import ResponseStore

log = logging.getLogger(__name__)

MAX_RUNNING = 64
"""Background responses running or waiting at once (the engine's queue bounds what decodes)."""
ENDED = ("completed", "incomplete", "failed", "cancelled")


@dataclass
class Run:
    """One background response while it runs."""

    builder: responses.Builder
    owner: str
    pending: responses.Pending
    status: str = "queued"
    events: list[dict[str, Any]] = field(default_factory=list)  # every stream event so far
    changed: asyncio.Event = field(default_factory=asyncio.Event)  # set (then replaced) on each new event
    task: asyncio.Task[None] | None = None
    final: dict[str, Any] | None = None
    stopping: bool = False  # cancel asked: the run ends at its next event even if a cancellation was lost

    def publish(self, new: Sequence[dict[str, Any]]) -> None:
        self.events.extend(new)
        self.changed.set()
        self.changed = asyncio.Event()

    def snapshot(self) -> dict[str, Any]:
        return self.final if self.final is not None else self.builder.response(self.status)


class Background:
    def __init__(self, store: ResponseStore) -> None:
        self.store = store
        self.runs: dict[str, Run] = {}

    def begin(
        self,
        events: AsyncGenerator[harmony.Event, None],
        outcome: Reply,
        builder: responses.Builder,
        pending: responses.Pending,
        owner: str,
        listed: Sequence[harmony.Namespace] = (),
    ) -> Run:
        """Store the response as queued and start running it; the caller has admitted it."""
        run = Run(builder, owner, pending)
        queued = builder.response("queued")
        self.store.put(queued, owner, pending.input_items, None)
        self.runs[builder.id] = run
        run.task = asyncio.ensure_future(self._run(run, events, outcome, listed))
        return run

    async def _run(
        self,
        run: Run,
        events: AsyncGenerator[harmony.Event, None],
        outcome: Reply,
        listed: Sequence[harmony.Namespace],
    ) -> None:
        builder = run.builder
        try:
            run.status = "in_progress"
            run.publish([*builder.start(), *builder.mcp_list_tools(listed)])
            async for event in events:
                if run.stopping:
                    raise asyncio.CancelledError
                run.publish(builder.feed(event))
            final, closing = builder.finish(outcome)
            run.publish(closing)
        except asyncio.CancelledError:
            builder.close()
            # No stream event says "cancelled" in OpenAI's list: the stream ends, and GET says so.
            final = builder.response("cancelled", outcome)
        except Exception as exc:  # the run's end, told to whoever asks; the server goes on
            log.exception("background response %s failed", builder.id)
            final = builder.response("failed", outcome)
            final["error"] = {"code": "server_error", "message": f"the generation failed: {exc}"[:500]}
            run.publish([{"type": "response.failed", "sequence_number": builder.sequence, "response": final}])
        finally:
            with contextlib.suppress(Exception):
                await events.aclose()  # frees the engine's slot (and cancels the job if it still runs)
        run.final, run.status = final, final["status"]
        conversation = builder.conversation(run.pending.conversation) if final["status"] != "failed" else None
        self.store.put(final, run.owner, run.pending.input_items, conversation, run.events)
        run.publish([])
        self.runs.pop(builder.id, None)

    def running(self, response_id: str, owner: str) -> Run | None:
        run = self.runs.get(response_id)
        return run if run is not None and run.owner == owner else None

    async def cancel(self, response_id: str, owner: str) -> dict[str, Any] | None:
        """The response after a cancel: stopped if it was running, as it was if it had ended."""
        run = self.running(response_id, owner)
        if run is not None and run.task is not None:
            # Both: a task's cancellation can be lost when the token it awaits arrives at the
            # same moment (asyncio.wait_for before Python 3.12); the flag is seen at the next token.
            run.stopping = True
            run.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(run.task)
            return run.snapshot()
        return self.store.get(response_id, owner)

    async def stream(self, response_id: str, owner: str, after: int) -> AsyncIterator[bytes]:
        """The response's stream events numbered above `after`: those sent already, then the
        rest as they come. Leaving (a client that goes away) stops nothing."""
        run = self.running(response_id, owner)
        if run is None:
            for event in self.store.events(response_id, owner) or []:
                if event["sequence_number"] > after:
                    yield responses.sse(event)
            return
        sent = 0
        while True:
            waiting = run.changed
            fresh = run.events[sent:]
            sent += len(fresh)
            for event in fresh:
                if event["sequence_number"] > after:
                    yield responses.sse(event)
            if run.final is not None and sent >= len(run.events):
                return
            await waiting.wait()

    async def close(self) -> None:
        """At shutdown: the runs are cancelled and stored as cancelled, not left in progress."""
        for run in list(self.runs.values()):
            if run.task is not None:
                run.task.cancel()
        for run in list(self.runs.values()):
            if run.task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await run.task
