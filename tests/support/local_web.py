"""Test double of the web, on 127.0.0.1 only: a few pages and an imitation of a
SearXNG instance's JSON search API (`/search?q=...&format=json`), which links
to those pages. Used by the browser tests (the browser is told to allow
private addresses, as a user would for a SearXNG at home)."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

ARTICLE = """<html><head><title>The Moon</title></head><body>
<h1>The Moon</h1>
<p>The Moon is Earth's only natural satellite. Its mean distance from Earth is
384,400 km, and it takes 27.3 days to orbit once.</p>
<p>See also <a href="/mars">Mars</a> and <a href="https://en.wikipedia.org/wiki/Moon">the encyclopedia</a>.</p>
<h2>Surface</h2>
<p>The surface is covered in regolith, and its craters were made by impacts.</p>
</body></html>"""

MARS = "<html><head><title>Mars</title></head><body><p>Mars is the fourth planet.</p></body></html>"


class QuietHandler(BaseHTTPRequestHandler):
    """A handler that logs nothing and sends whole bodies (the pages of these test sites)."""

    def log_message(self, *args: object) -> None:
        pass

    def _send(self, body: bytes, kind: str, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Handler(QuietHandler):
    searches: list[str]

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        base = f"http://127.0.0.1:{self.server.server_address[1]}"
        if parts.path == "/search":
            query = parse_qs(parts.query)
            self.searches.append(query.get("q", [""])[0])
            if query.get("format") != ["json"]:
                self._send(b"<html>use format=json</html>", "text/html")
                return
            results = [
                {"url": f"{base}/moon", "title": "The Moon", "content": "Earth's only natural satellite."},
                {"url": f"{base}/mars", "title": "Mars", "content": "The fourth planet."},
            ]
            self._send(json.dumps({"query": query.get("q", [""])[0], "results": results}).encode(), "application/json")
        elif parts.path == "/moon":
            self._send(ARTICLE.encode(), "text/html; charset=utf-8")
        elif parts.path == "/mars":
            self._send(MARS.encode(), "text/html")
        else:
            self._send(b"not here", "text/plain", 404)


@contextlib.contextmanager
def local_web() -> Iterator[tuple[str, list[str]]]:
    """(base URL, the queries the search received)."""
    searches: list[str] = []
    handler = type("Handler", (_Handler,), {"searches": searches})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", searches
    finally:
        server.shutdown()
        server.server_close()
