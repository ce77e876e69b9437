"""The FastAPI application, wired: the lifespan (load, keep-alive), errors in
each API family's shape, the web chat, /health and /metrics, the routers of
the API families (api/), and the guard in front of them all (guard.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware

from edgeoss import __version__
from edgeoss.errors import ApiError
from edgeoss.server.api import ollama_routes, openai_routes
from edgeoss.server.guard import Guard, api_shape, error_body
from edgeoss.server.host import ModelHost
from edgeoss.server.metrics import CONTENT_TYPE, Metrics
from edgeoss.server.options import ServeOptions
from edgeoss.server.service import ProcessorFor, Server

log = logging.getLogger(__name__)

WEB = Path(__file__).parent / "web"


def create_app(host: ModelHost, options: ServeOptions, processor_for: ProcessorFor | None = None) -> FastAPI:
    metrics = Metrics()
    server = Server(host, options, metrics, processor_for)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The decode thread takes the GIL back after every llama_decode; with the
        # default 5 ms switch interval it can wait behind the event loop thread,
        # which cost about 4% of tokens/s on a 2-core machine (measured).
        sys.setswitchinterval(0.001)
        host.start_loading()
        if server.toolbox.mcp is not None:
            await asyncio.to_thread(server.toolbox.mcp.start)  # a server that cannot start is left out, and logged
        keeper = asyncio.ensure_future(_keep_alive(host, metrics))
        try:
            yield
        finally:
            keeper.cancel()
            for stop in server.on_shutdown:  # background responses end as cancelled, not in progress
                await stop()
            await asyncio.to_thread(server.toolbox.close)  # the python sandboxes and their scratch folders
            await asyncio.to_thread(host.close)

    app = FastAPI(title="edgeoss", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.server = server

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(error_body(exc, api_shape(request.url.path)), exc.status, headers=exc.headers)

    @app.exception_handler(HTTPException)
    async def routing_error(request: Request, exc: HTTPException) -> Response:
        # Starlette's own refusals (no such route, a method the route lacks): a client of
        # /v1 or /api parses its API's error shape, not {"detail": ...}; the web pages keep Starlette's.
        path = request.url.path
        if not path.startswith(("/v1/", "/api/")):
            return await http_exception_handler(request, exc)
        message = {
            404: f"{path} is not a route of this server",
            405: f"{path} does not take {request.method}",
        }.get(exc.status_code, str(exc.detail))
        error = ApiError(exc.status_code, message, "invalid_request_error" if exc.status_code < 500 else "server_error")
        return JSONResponse(error_body(error, api_shape(path)), exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s", request.url.path)
        error = ApiError(500, f"internal error: {type(exc).__name__}: {exc}", "server_error")
        return JSONResponse(error_body(error, api_shape(request.url.path)), 500)

    @app.get("/", include_in_schema=False)
    async def web_chat() -> FileResponse:
        return FileResponse(WEB / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=WEB), name="static")

    @app.get("/health")
    async def health() -> JSONResponse:
        host.check_broken()
        s = host.settings
        # What the loaded engine says (a provider may have fallen back to the CPU), else what was asked.
        engine = host.engine
        place = engine.placement if engine is not None else (host.info.placement or s.placement())
        body: dict[str, Any] = {
            "status": host.state,
            "model": host.info.name,
            "demo": host.info.is_demo,
            "backend": f"{host.info.backend}, {place}",
            "context_per_sequence": s.context_length // host.parallel,
            "parallel": host.parallel,
        }
        if host.error:
            body["error"] = host.error
        if s.workers:
            lost = getattr(engine, "lost_workers", ()) if engine is not None else ()
            state = "connected" if engine is not None else "not connected (the model is not loaded)"
            body["workers"] = [{"endpoint": w, "state": "lost" if w in lost else state} for w in s.workers]
        return JSONResponse(body, 200 if host.state in ("ready", "unloaded") else 503)

    @app.get("/metrics")
    async def prometheus() -> Response:
        metrics.model_loaded.set(1 if host.state == "ready" else 0)
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    app.include_router(openai_routes.router(server))
    app.include_router(ollama_routes.router(server))

    app.add_middleware(Guard, options=options, metrics=metrics)
    if options.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=options.cors_origins,
            allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "X-Api-Key"],
        )
    return app


async def _keep_alive(host: ModelHost, metrics: Metrics) -> None:
    while True:
        await asyncio.sleep(1.0)
        if await asyncio.to_thread(host.unload_if_idle):
            metrics.model_loaded.set(0)
