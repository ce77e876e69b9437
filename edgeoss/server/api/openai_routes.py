"""The OpenAI API family under /v1: models, Chat Completions, Responses."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from edgeoss.server.api import openai_chat, responses
from edgeoss.server.service import Server, json_body, with_effort
from edgeoss.tools import loop

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


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

    response_store = responses.ResponseStore()

    @api.post("/v1/responses")
    async def responses_create(request: Request) -> Response:
        body = with_effort(await json_body(request), options.effort)
        server.check_model(body)
        ask, stream, stored = responses.parse(body, response_store, options.max_tokens, options.request_timeout_s)
        events, outcome = await server.start(request, ask)
        builder = responses.Builder(body, host.info.name)
        builder.container = "cntr_" + loop.conversation_key(ask.turns)  # the python session it runs in
        listed = server.toolbox.only((), ask.mcp_servers).mcp_namespaces() if ask.mcp_servers else ()
        if stream:
            return StreamingResponse(
                responses.stream(events, outcome, builder, response_store, stored, listed),
                media_type="text/event-stream",
                headers=SSE_HEADERS,
            )
        builder.mcp_list_tools(listed)
        await server.collect(request, responses.feeding(events, builder))
        return JSONResponse(responses.complete(builder, outcome, response_store, stored))

    return api
