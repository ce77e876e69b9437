"""The safety layer in front of every route: the API key on /v1 and /api, the
body size limit, a Host check on loopback servers (against DNS rebinding),
the access log, errors in each API family's shape, and the refusal to serve
beyond loopback without a key."""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import Mapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edgeoss.errors import ApiError, UsageError
from edgeoss.server.metrics import Metrics
from edgeoss.server.options import ServeOptions

access_log = logging.getLogger("edgeoss.access")

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")

CONTENT_SECURITY_POLICY = (
    # The web chat is static files of its own: no inline script or style, nothing from elsewhere,
    # so model output that holds HTML or script can never run, even if it reached the page as markup.
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


def presented_key(headers: Mapping[str, str]) -> str:
    """The API key a request presents: `Authorization: Bearer KEY` or `X-Api-Key`."""
    return headers.get("authorization", "").removeprefix("Bearer ").strip() or headers.get("x-api-key", "")


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
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            await send(message)

        error = self._refuse(path, headers, api)
        try:
            if error is not None:
                if error.status != 413:
                    # Read the body away first (it is within the limit): a connection closed on
                    # unread bytes is reset, and the client may lose the answer with it.
                    await self._drain(receive)
                # The connection ends with this answer: its body was not read, so no next
                # request on it could be told from the rest of this one.
                error.headers = {**error.headers, "Connection": "close"}
                await _send_error(error, api_shape(path), send_logged)
                return
            await self.app(scope, self._limited(receive, scope["method"]), send_logged)
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
            given = presented_key(headers)
            # In constant time: a comparison that stops at the first wrong byte tells the key away.
            # The header's own bytes (read as latin-1) against the key as UTF-8.
            if not hmac.compare_digest(given.encode("latin-1", "replace"), key.encode("utf-8")):
                return ApiError(401, "a valid API key is required (Authorization: Bearer KEY)", code="invalid_api_key")
        return None

    async def _drain(self, receive: Receive) -> None:
        seen = 0
        while seen <= self.options.max_body_bytes:
            message = await receive()
            if message["type"] != "http.request":
                return
            seen += len(message.get("body", b""))
            if not message.get("more_body", False):
                return

    def _limited(self, receive: Receive, method: str) -> Receive:
        limit = self.options.max_body_bytes
        seen = 0
        # No GET, HEAD or OPTIONS route reads a body: what reaches receive() there is a response
        # listening for the client's disconnect (Starlette's file and streaming responses), which
        # discards body messages. Raising there would abort the page mid-answer (found by the
        # route property test: GET / with a 1 MiB body lost its page), so those bodies are let
        # through to be discarded, chunk by chunk; every route that reads one gets the 413.
        reads_body = method not in ("GET", "HEAD", "OPTIONS")

        async def wrapped() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit and reads_body:
                    raise ApiError(
                        413, f"the request body is over the limit of {limit} bytes", headers={"Connection": "close"}
                    )
            return message

        return wrapped


_KNOWN_ROUTES = {"/health", "/metrics", "/v1/models", "/v1/chat/completions", "/v1/responses", "/"}


def api_shape(path: str) -> str:
    return "ollama" if path.startswith("/api/") else "openai"


def error_body(error: ApiError, shape: str) -> dict[str, Any]:
    return {"error": error.message} if shape == "ollama" else error.openai()


async def _send_error(error: ApiError, shape: str, send: Send) -> None:
    body = json.dumps(error_body(error, shape)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.encode(), v.encode()) for k, v in error.headers.items()]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def check_exposure(options: ServeOptions, insecure: bool) -> None:
    """Refuse a non-loopback address without an API key, unless the user insists."""
    if not is_loopback(options.host) and not options.api_key and not insecure:
        raise UsageError(
            f"refusing to serve on {options.host} without an API key: anyone on the network could use the model",
            hint="add --api-key KEY (clients send Authorization: Bearer KEY), or --insecure if you mean it",
        )
