"""The OpenAI API family under /v1: models, Chat Completions, Responses."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from edgeoss.errors import ApiError
from edgeoss.server.api import openai_chat, responses
from edgeoss.server.background import MAX_RUNNING, Background
from edgeoss.server.guard import presented_key
from edgeoss.server.http_errors import bad_request
from edgeoss.server.reasoning_memory import owner_of
from edgeoss.server.response_store import open_store
from edgeoss.server.service import Server, json_body, with_effort
from edgeoss.tools import loop

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def input_items_page(items: list[dict[str, Any]], query: Mapping[str, str]) -> dict[str, Any]:
    """One page of a response's input items, as OpenAI lists them (limit, order, after)."""
    limit_text, order, after = query.get("limit", "20"), query.get("order", "desc"), query.get("after")
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= 100:
        raise bad_request("limit must be an integer from 1 to 100", "limit")
    if order not in ("asc", "desc"):
        raise bad_request("order must be asc or desc", "order")
    ordered = items if order == "asc" else items[::-1]
    if after is not None:
        ids = [item.get("id") for item in ordered]
        if after not in ids:
            raise bad_request(f"after: no input item {after[:80]!r} in this response", "after")
        ordered = ordered[ids.index(after) + 1 :]
    page = ordered[: int(limit_text)]
    return {
        "object": "list",
        "data": page,
        "first_id": page[0].get("id") if page else None,
        "last_id": page[-1].get("id") if page else None,
        "has_more": len(ordered) > len(page),
    }


def router(server: Server) -> APIRouter:
    host, options = server.host, server.options
    api = APIRouter()

    @api.get("/v1/models")
    async def models() -> dict[str, Any]:
        info = host.info
        entry = {"id": info.name, "object": "model", "created": int(host.loaded_at), "owned_by": "edgeoss"}
        return {"object": "list", "data": [entry]}

    @api.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        body = with_effort(await json_body(request), options.effort)
        ask, stream, include_usage = openai_chat.parse(body, options.max_tokens, options.request_timeout_s)
        server.check_model(body)
        events, outcome = await server.start(request, ask)
        name = host.info.name
        if stream:
            return StreamingResponse(
                openai_chat.stream(events, outcome, name, include_usage),
                media_type="text/event-stream",
                headers=SSE_HEADERS,
            )
        await server.collect(request, events)
        return JSONResponse(openai_chat.completion(outcome, name, openai_chat.new_id(), int(time.time())))

    store = open_store()
    background = Background(store)
    server.on_shutdown.append(background.close)

    def owner(request: Request) -> str:
        return owner_of(presented_key(request.headers))

    @api.post("/v1/responses")
    async def responses_create(request: Request) -> Response:
        body = with_effort(await json_body(request), options.effort)
        server.check_model(body)
        who = owner(request)
        ask, stream, pending = responses.parse(body, store, who, options.max_tokens, options.request_timeout_s)
        _, in_background = responses.flags_of(body)
        if in_background and len(background.runs) >= MAX_RUNNING:
            raise ApiError(
                429,
                f"{MAX_RUNNING} background responses are running; retry later",
                "server_busy",
                code="too_many_background_responses",
                headers={"Retry-After": "5"},
            )
        events, outcome = await server.start(request, ask)
        builder = responses.Builder(body, host.info.name)
        builder.container = "cntr_" + loop.conversation_key(ask.turns)  # the python session it runs in
        listed = server.toolbox.only((), ask.mcp_servers).mcp_namespaces() if ask.mcp_servers else ()
        if in_background:
            run = background.begin(events, outcome, builder, pending, who, listed)
            if stream:
                return StreamingResponse(
                    background.stream(builder.id, who, -1), media_type="text/event-stream", headers=SSE_HEADERS
                )
            return JSONResponse(run.snapshot())
        if stream:
            return StreamingResponse(
                responses.stream(events, outcome, builder, store, pending, who, listed),
                media_type="text/event-stream",
                headers=SSE_HEADERS,
            )
        builder.mcp_list_tools(listed)
        await server.collect(request, responses.feeding(events, builder))
        return JSONResponse(responses.complete(builder, outcome, store, pending, who))

    def not_found(response_id: str) -> ApiError:
        return ApiError(
            404,
            f"no stored response {response_id[:80]!r} (never stored, deleted or expired)",
            "invalid_request_error",
            code="response_not_found",
        )

    @api.get("/v1/responses/{response_id}")
    async def responses_get(request: Request, response_id: str) -> Response:
        who = owner(request)
        query = request.query_params
        if query.get("stream") in ("true", "1"):
            after = query.get("starting_after", "-1")
            if not after.lstrip("-").isdigit() or len(after) > 12:
                raise bad_request("starting_after must be an event's sequence number", "starting_after")
            if background.running(response_id, who) is None and store.get(response_id, who) is None:
                raise not_found(response_id)
            return StreamingResponse(
                background.stream(response_id, who, int(after)), media_type="text/event-stream", headers=SSE_HEADERS
            )
        run = background.running(response_id, who)
        found = run.snapshot() if run is not None else store.get(response_id, who)
        if found is None:
            raise not_found(response_id)
        return JSONResponse(found)

    @api.delete("/v1/responses/{response_id}")
    async def responses_delete(request: Request, response_id: str) -> Response:
        who = owner(request)
        if background.running(response_id, who) is not None:
            await background.cancel(response_id, who)
        if not store.delete(response_id, who):
            raise not_found(response_id)
        return JSONResponse({"id": response_id, "object": "response", "deleted": True})

    @api.post("/v1/responses/{response_id}/cancel")
    async def responses_cancel(request: Request, response_id: str) -> Response:
        found = await background.cancel(response_id, owner(request))
        if found is None:
            raise not_found(response_id)
        return JSONResponse(found)

    @api.get("/v1/responses/{response_id}/input_items")
    async def responses_input_items(request: Request, response_id: str) -> Response:
        items = store.input_items(response_id, owner(request))
        if items is None:
            raise not_found(response_id)
        return JSONResponse(input_items_page(items, request.query_params))

    return api
