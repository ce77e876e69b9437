"""The FastAPI application: routes of every API family, the safety layer
(API key, body limit, Host check, CORS), errors in each family's shape,
the access log and the keep-alive loop."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edgeoss import __version__
from edgeoss.engines.base import LogitsProcessor
from edgeoss.server import generation, ollama, openai_chat, responses
from edgeoss.server.errors import ApiError, bad_request
from edgeoss.server.host import Busy, ModelHost
from edgeoss.server.metrics import CONTENT_TYPE, Metrics

log = logging.getLogger(__name__)
access_log = logging.getLogger("edgeoss.access")

WEB = Path(__file__).parent / "web"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
# A test double can drive the model through this hook (tests/scripted_server.py); the product passes None.
ProcessorFor = Callable[[Request], LogitsProcessor | None]


@dataclass
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8734
    api_key: str | None = None
    cors_origins: list[str] = field(default_factory=list)
    max_body_bytes: int = 8 * 1024 * 1024
    request_timeout_s: float | None = 600.0
    log_prompts: bool = False
    max_tokens: int = 32768  # default completion budget when a request names none (capped by the context)
    effort: str = "medium"  # reasoning effort when a request names none (serve --effort, the tray's setting)


def _hostname(header: str) -> str:
    """The name in a Host header, without the port ("[::1]:8734" -> "::1")."""
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def is_loopback(host: str) -> bool:
    return host in LOOPBACK_HOSTS or host.startswith("127.")


class Guard:
    """Pure ASGI: API key on /v1 and /api, the body size limit, a Host check
    on loopback servers (against DNS rebinding), and the access log."""

    def __init__(self, app: ASGIApp, options: ServeOptions, metrics: Metrics) -> None:
        self.app, self.options, self.metrics = app, options, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        api = path.startswith(("/v1/", "/api/"))
        started = time.monotonic()
        status_box = {"status": 0}

        async def send_logged(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_box["status"] = message["status"]
            await send(message)

        error = self._refuse(path, headers, api)
        try:
            if error is not None:
                await _send_error(error, api_shape(path), send_logged)
                return
            await self.app(scope, self._limited(receive, path), send_logged)
        finally:
            route = path if path in _KNOWN_ROUTES else "other"
            self.metrics.requests.labels(route, str(status_box["status"])).inc()
            access_log.info(
                '%s "%s %s" %d %.3fs',
                (scope.get("client") or ("-",))[0],
                scope["method"],
                path,
                status_box["status"],
                time.monotonic() - started,
            )

    def _refuse(self, path: str, headers: dict[str, str], api: bool) -> ApiError | None:
        host = _hostname(headers.get("host", ""))
        if is_loopback(self.options.host) and host and not is_loopback(host):
            return ApiError(403, f"Host {host!r} is not this server (a loopback server answers only loopback names)")
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.options.max_body_bytes:
            return ApiError(413, f"the request body is {length} bytes; the limit is {self.options.max_body_bytes}")
        key = self.options.api_key
        if key and api:
            given = headers.get("authorization", "").removeprefix("Bearer ").strip() or headers.get("x-api-key", "")
            if given != key:
                return ApiError(401, "a valid API key is required (Authorization: Bearer KEY)", code="invalid_api_key")
        return None

    def _limited(self, receive: Receive, path: str) -> Receive:
        limit = self.options.max_body_bytes
        seen = 0

        async def wrapped() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise ApiError(413, f"the request body is over the limit of {limit} bytes")
            return message

        return wrapped


_KNOWN_ROUTES = {"/health", "/metrics", "/v1/models", "/v1/chat/completions", "/v1/responses", "/"}


def api_shape(path: str) -> str:
    return "ollama" if path.startswith("/api/") else "openai"


def _error_body(error: ApiError, shape: str) -> dict[str, Any]:
    return {"error": error.message} if shape == "ollama" else error.openai()


async def _send_error(error: ApiError, shape: str, send: Send) -> None:
    body = json.dumps(_error_body(error, shape)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.encode(), v.encode()) for k, v in error.headers.items()]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise bad_request(f"the body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise bad_request("the body must be a JSON object")
    return body


def with_effort(body: dict[str, Any], effort: str) -> dict[str, Any]:
    """The body with the server's default reasoning effort where it names none,
    in each API's own field (so Responses also reports the effort it used)."""
    reasoning = body.get("reasoning")
    named = "reasoning_effort" in body or "think" in body or (isinstance(reasoning, dict) and "effort" in reasoning)
    return body if named else {**body, "reasoning_effort": effort, "think": effort}


class Server:
    """Routes shared by the API families: admission, the model check, the
    generation with its metrics, and disconnect handling."""

    def __init__(self, host: ModelHost, options: ServeOptions, metrics: Metrics, processor_for: ProcessorFor | None):
        self.host, self.options, self.metrics, self.processor_for = host, options, metrics, processor_for

    def names(self) -> set[str]:
        info = self.host.info
        base = {info.name, info.variant, info.path.name, info.path.stem}
        if info.variant.startswith("gpt-oss-"):
            base.add("gpt-oss:" + info.variant.removeprefix("gpt-oss-"))  # Ollama's name for it
        return base | {n + ":latest" for n in base}

    def check_model(self, body: dict[str, Any]) -> None:
        model = body.get("model")
        if model in (None, "") or model in self.names():
            return
        raise ApiError(
            404,
            f"model {model!r} is not served here; this server runs {self.host.info.name!r}",
            param="model",
            code="model_not_found",
        )

    def admit(self) -> None:
        try:
            self.host.admit()
        except Busy as exc:
            self.metrics.rejected.inc()
            raise ApiError(
                429,
                f"the server is busy: {exc}; retry shortly",
                "server_busy",
                code="queue_full",
                headers={"Retry-After": "1"},
            ) from None
        self._gauges()

    def release(self) -> None:
        self.host.release()
        self._gauges()

    def _gauges(self) -> None:
        self.metrics.in_flight.set(self.host.in_flight)
        self.metrics.queue_depth.set(max(0, self.host.in_flight - self.host.parallel))

    async def start(self, request: Request, ask: generation.Ask) -> tuple[AsyncIterator[Any], generation.Outcome]:
        """Admit, load if needed, check the context; (events, outcome). The
        caller must run release() when the events end (finish_events does)."""
        self.admit()
        try:
            if self.host.state == "loading":
                raise ApiError(
                    503,
                    "the model is loading; retry when /health says ready",
                    "server_busy",
                    code="model_loading",
                    headers={"Retry-After": "2"},
                )
            if self.host.state == "failed":
                raise ApiError(
                    503, f"the model could not be loaded: {self.host.error}", "server_error", code="model_failed"
                )
            engine = await self.host.ready_engine()
            outcome = generation.Outcome()
            try:
                prompt = generation.prepare(engine, ask, outcome)
            except generation.ContextOverflow as exc:
                raise ApiError(400, str(exc), param="messages", code="context_length_exceeded") from None
            if self.options.log_prompts:
                access_log.info("prompt: %s", json.dumps([t.__dict__ for t in ask.turns], default=str)[:20000])
            processor = self.processor_for(request) if self.processor_for else None
            events = generation.events(engine, prompt, ask, outcome, processor)
        except BaseException:
            self.release()
            raise
        return self.finish_events(events, outcome), outcome

    async def finish_events(self, events: AsyncIterator[Any], outcome: generation.Outcome) -> AsyncIterator[Any]:
        try:
            async for event in events:
                yield event
            self.metrics.generation(outcome)
        finally:
            await events.aclose()  # type: ignore[attr-defined]
            self.release()

    async def collect(self, request: Request, events: AsyncIterator[Any]) -> None:
        """Drain events for a non-streaming reply; stop when the client leaves."""

        async def drain() -> None:
            async for _ in events:
                pass

        task = asyncio.ensure_future(drain())
        try:
            while not task.done():
                done, _ = await asyncio.wait({task}, timeout=0.25)
                if not done and await request.is_disconnected():
                    task.cancel()
                    break
            with contextlib.suppress(asyncio.CancelledError):
                await task
        finally:
            if not task.done():
                task.cancel()


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
        keeper = asyncio.ensure_future(_keep_alive(host, metrics))
        try:
            yield
        finally:
            keeper.cancel()
            await asyncio.to_thread(host.close)

    app = FastAPI(title="edgeoss", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.server = server

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(_error_body(exc, api_shape(request.url.path)), exc.status, headers=exc.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s", request.url.path)
        error = ApiError(500, f"internal error: {type(exc).__name__}: {exc}", "server_error")
        return JSONResponse(_error_body(error, api_shape(request.url.path)), 500)

    @app.get("/", include_in_schema=False)
    async def web_chat() -> FileResponse:
        return FileResponse(WEB / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=WEB), name="static")

    @app.get("/health")
    async def health() -> JSONResponse:
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
        return JSONResponse(body, 200 if host.state in ("ready", "unloaded") else 503)

    @app.get("/metrics")
    async def prometheus() -> Response:
        metrics.model_loaded.set(1 if host.state == "ready" else 0)
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        info = host.info
        entry = {"id": info.name, "object": "model", "created": int(host.loaded_at), "owned_by": "edgeoss"}
        return {"object": "list", "data": [entry]}

    @app.post("/v1/chat/completions")
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
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )
        await server.collect(request, events)
        return JSONResponse(openai_chat.completion(outcome, name, openai_chat.new_id(), int(time.time())))

    response_store = responses.ResponseStore()

    @app.post("/v1/responses")
    async def responses_create(request: Request) -> Response:
        body = with_effort(await json_body(request), options.effort)
        server.check_model(body)
        ask, stream, stored = responses.parse(body, response_store, options.max_tokens, options.request_timeout_s)
        events, outcome = await server.start(request, ask)
        builder = responses.Builder(body, host.info.name)
        if stream:
            return StreamingResponse(
                responses.stream(events, outcome, builder, response_store, stored),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )
        await server.collect(request, responses.feeding(events, builder))
        return JSONResponse(responses.complete(builder, outcome, response_store, stored))

    # ---------------------------------------------------------------- Ollama

    @app.get("/api/version")
    async def ollama_version() -> dict[str, str]:
        return {"version": ollama.API_VERSION}

    @app.get("/api/tags")
    async def ollama_tags() -> dict[str, Any]:
        return {"models": [ollama.tag(host)]}

    @app.post("/api/show")
    async def ollama_show(request: Request) -> dict[str, Any]:
        body = await json_body(request)
        if "model" not in body and "name" in body:
            body["model"] = body["name"]
        server.check_model(body)
        return ollama.show(host)

    @app.get("/api/ps")
    async def ollama_ps() -> dict[str, Any]:
        return ollama.ps(host)

    @app.post("/api/chat")
    async def ollama_chat(request: Request) -> Response:
        return await _ollama_generation(request, ollama.chat_ask, ollama.chat_stream, ollama.chat_reply)

    @app.post("/api/generate")
    async def ollama_generate(request: Request) -> Response:
        return await _ollama_generation(request, ollama.generate_ask, ollama.generate_stream, ollama.generate_reply)

    async def _ollama_generation(request: Request, parse: Any, stream_fn: Any, reply_fn: Any) -> Response:
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

    @app.api_route("/api/{rest:path}", methods=["GET", "POST", "DELETE"])
    async def ollama_unsupported(rest: str) -> Response:
        raise ApiError(404, f"/api/{rest} is not provided by edgeoss (it serves one model: {host.info.name})")

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
