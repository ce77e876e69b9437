"""Ollama's API family under /api: version, tags, show, ps, chat, generate;
any other /api route gets Ollama's error shape, not a bare 404."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from edgeoss import harmony, spec
from edgeoss.errors import (
    ApiError,
    EdgeossError,
    HubNotFoundError,
    HubUnreachableError,
    ModelNotFoundError,
    UsageError,
)
from edgeoss.runtime.reply import Reply
from edgeoss.server.api import ollama
from edgeoss.server.generation import Ask
from edgeoss.server.http_errors import bad_request
from edgeoss.server.service import Server, json_body, with_effort
from edgeoss.weights.store import Store, check_name

log = logging.getLogger(__name__)

Parse = Callable[[Mapping[str, Any], int, float | None], tuple[Ask, bool, bool]]
Stream = Callable[[AsyncIterator[harmony.Event], Reply, str, bool, float], AsyncIterator[bytes]]
Final = Callable[[Reply, str, bool, float], dict[str, Any]]


def router(server: Server) -> APIRouter:
    host, options = server.host, server.options
    api = APIRouter()

    @api.get("/api/version")
    async def ollama_version() -> dict[str, str]:
        return {"version": ollama.API_VERSION}

    @api.get("/api/tags")
    async def ollama_tags() -> dict[str, Any]:
        return {"models": [ollama.tag(host)]}

    @api.post("/api/show")
    async def ollama_show(request: Request) -> dict[str, Any]:
        body = await json_body(request)
        if "model" not in body and "name" in body:
            body["model"] = body["name"]
        server.check_model(body)
        return ollama.show(host)

    @api.get("/api/ps")
    async def ollama_ps() -> dict[str, Any]:
        return ollama.ps(host)

    @api.post("/api/chat")
    async def ollama_chat(request: Request) -> Response:
        return await generation(request, ollama.chat_ask, ollama.chat_stream, ollama.chat_reply)

    @api.post("/api/generate")
    async def ollama_generate(request: Request) -> Response:
        return await generation(request, ollama.generate_ask, ollama.generate_stream, ollama.generate_reply)

    async def generation(request: Request, parse: Parse, stream_fn: Stream, reply_fn: Final) -> Response:
        started = time.monotonic()
        body = with_effort(await json_body(request), options.effort)
        server.check_model(body)
        ask, stream, show = parse(body, options.max_tokens, options.request_timeout_s)
        events, outcome = await server.start(request, ask)
        name = body.get("model") or ollama.display_name(host)
        if stream:
            return StreamingResponse(stream_fn(events, outcome, name, show, started), media_type="application/x-ndjson")
        await server.collect(request, events)
        return JSONResponse(reply_fn(outcome, name, show, started))

    @api.post("/api/pull")
    async def ollama_pull(request: Request) -> Response:
        """Ollama's pull, streamed in its shape; the model is verified before it is stored."""
        body = await json_body(request)
        name = _name(body, "model", "name")
        stream = body.get("stream", True) is not False
        events = _pull_events(name)
        if stream:
            return StreamingResponse(_ndjson(events), media_type="application/x-ndjson")
        last: dict[str, Any] = {}
        async for event in events:
            last = event
        if "error" in last:
            raise ApiError(int(last.pop("status_code", 400)), str(last["error"]))
        return JSONResponse(last)

    @api.delete("/api/delete")
    async def ollama_delete(request: Request) -> Response:
        name = _name(await json_body(request), "model", "name")
        store = Store()
        try:
            stored = store_name(store, name)
            served = host.info.path
            if store.folder(stored) in (served, *served.parents):
                raise ApiError(409, f"model {name!r} is the one this server runs; stop the server to delete it")
            await asyncio.to_thread(store.remove, stored)
        except ModelNotFoundError:
            raise ApiError(404, f"model {name!r} not found") from None
        except UsageError as exc:
            raise ApiError(400, exc.message, param="model") from None
        return Response(status_code=200)

    @api.post("/api/copy")
    async def ollama_copy(request: Request) -> Response:
        body = await json_body(request)
        source, destination = _name(body, "source"), _name(body, "destination")
        store = Store()
        try:
            await asyncio.to_thread(store.copy, store_name(store, source), destination)
        except ModelNotFoundError:
            raise ApiError(404, f"model {source!r} not found") from None
        except UsageError as exc:  # a taken or invalid name
            raise ApiError(400, exc.message, param="destination") from None
        return Response(status_code=200)

    @api.api_route("/api/{rest:path}", methods=["GET", "POST", "DELETE"])
    async def ollama_unsupported(rest: str) -> Response:
        raise ApiError(404, f"/api/{rest} is not provided by edgeoss (it serves one model: {host.info.name})")

    return api


def _name(body: dict[str, Any], *keys: str) -> str:
    for key in keys:
        value = body.get(key)
        if isinstance(value, str) and value:
            return value
    raise bad_request(f"{keys[0]} must be a model name", keys[0])


def store_name(store: Store, name: str) -> str:
    """The store's name for what an Ollama client calls a model: an Ollama name
    ("gpt-oss:20b") is the model pulled under it, or a stored GGUF of that variant (not found when there is
    none: the name is a good one, the store just lacks it); any other is the name itself without ":latest"
    (a usage error when it is no valid store name)."""
    variant = spec.OLLAMA_NAMES.get(name)
    if variant is not None:
        stored = store.list()
        # What `pull gpt-oss:20b` stored it as (the variant's name), else any GGUF of that variant.
        if any(m.name == variant for m in stored):
            return variant
        for manifest in stored:
            if manifest.variant == variant and manifest.format == "gguf":
                return manifest.name
        raise ModelNotFoundError(f"no stored model is {name}")
    return check_name(name.removesuffix(":latest"))


async def _ndjson(events: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    async for event in events:
        event.pop("status_code", None)  # for a non-streamed reply's status only
        yield (json.dumps(event) + "\n").encode()


async def _pull_events(name: str) -> AsyncIterator[dict[str, Any]]:
    """The statuses of one pull, run on a worker thread: Ollama's, then
    {"status": "success"}, or {"error": ...} (with the HTTP status it would get)."""
    from edgeoss.weights import pull

    loop = asyncio.get_running_loop()
    events: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

    def put(item: dict[str, Any] | None) -> None:
        loop.call_soon_threadsafe(events.put_nowait, item)

    def on_event(status: str, completed: int, total: int) -> None:
        put({"status": status, **({"total": total, "completed": completed} if total else {})})

    def work() -> None:
        try:
            store = Store()
            artifact = pull.resolve(name, "gguf")
            if any(m.name == artifact.name for m in store.list()):
                put({"status": "success"})  # already here, as Ollama answers a second pull
                return
            pull.pull(name, "gguf", store=store, progress=False, on_event=on_event)
            put({"status": "success"})
        except EdgeossError as exc:
            code = {HubNotFoundError: 404, HubUnreachableError: 502}.get(type(exc), 400)
            put({"error": exc.message, "status_code": code})
        except Exception as exc:  # a bug: said in the stream, not a dropped connection
            log.exception("pull of %s failed", name)
            put({"error": f"the pull failed: {type(exc).__name__}: {exc}", "status_code": 500})
        finally:
            put(None)

    worker = asyncio.ensure_future(asyncio.to_thread(work))
    try:
        while (item := await events.get()) is not None:
            yield item
    finally:
        await worker
