"""The browser's fetch: it never reaches the user's own network, it caps what it
reads, and it survives slow and malformed pages. Every server here is on
127.0.0.1; the refused addresses are refused before any connection is tried."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import ThreadingHTTPServer

import httpcore
import pytest

from edgeoss.tools import web
from local_web import QuietHandler

ALLOWED = web.Policy(allow_private=True, timeout_s=5)


class Pages(QuietHandler):
    def do_GET(self) -> None:
        if self.path == "/page":
            self._send(b"<html><head><title>T</title></head><body><p>Hello</p></body></html>", "text/html")
        elif self.path == "/latin1":
            self._send("caf\xe9".encode("latin-1"), "text/plain; charset=latin-1")
        elif self.path == "/huge":
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(100 << 20))
            self.end_headers()
            try:
                for _ in range(100):
                    self.wfile.write(b"x" * (1 << 20))
            except (BrokenPipeError, ConnectionResetError):
                pass
        elif self.path == "/slow":
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            try:
                for _ in range(100):
                    self.wfile.write(b"<p>drip</p>")
                    self.wfile.flush()
                    time.sleep(0.2)
            except (BrokenPipeError, ConnectionResetError):
                pass
        elif self.path == "/to-metadata":
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.end_headers()
        elif self.path == "/loop":
            self.send_response(302)
            self.send_header("Location", "/loop")
            self.end_headers()
        elif self.path == "/binary":
            self._send(b"\x89PNG...", "image/png")
        elif self.path == "/garbage":
            self.wfile.write(b"NOT HTTP AT ALL\r\n\r\n")
        else:
            self._send(b"no", "text/plain", 404)


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Pages)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every address the fetch connects to."""
    seen: list[str] = []
    real = httpcore.SyncBackend.connect_tcp

    def spy(self: httpcore.SyncBackend, host: str, port: int, *args: object, **kwargs: object) -> object:
        seen.append(host)
        return real(self, host, port, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(httpcore.SyncBackend, "connect_tcp", spy)
    return seen


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://localhost:11434/api/tags",
        "http://2130706433/",  # 127.0.0.1 as one number
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://169.254.169.254/latest/meta-data/",
        "http://192.168.1.1/",
        "http://10.0.0.1/",
        "http://172.16.0.1/",
        "http://100.64.0.1/",  # shared address space (CGNAT)
        "http://0.0.0.0/",
        "http://[fe80::1]/",
        "http://[fd00::1]/",
        "http://224.0.0.1/",
    ],
)
def test_the_users_own_network_is_refused_before_any_connection(url: str, connections: list[str]) -> None:
    started = time.monotonic()
    with pytest.raises(web.Blocked, match="refused"):
        web.fetch(url)
    assert connections == [] and time.monotonic() - started < 1


def test_allowing_private_addresses_never_allows_link_local(site: str, connections: list[str]) -> None:
    assert web.fetch(site + "/page", ALLOWED).text.startswith("<html>")
    with pytest.raises(web.Blocked, match="link-local"):
        web.fetch("http://169.254.169.254/", ALLOWED)
    with pytest.raises(web.Blocked, match="link-local"):
        web.fetch(site + "/to-metadata", ALLOWED)  # a redirect is checked like the first request
    assert connections == ["127.0.0.1", "127.0.0.1"]


def test_a_page_is_decoded_by_its_charset(site: str) -> None:
    page = web.fetch(site + "/latin1", ALLOWED)
    assert page.text == "café" and page.status == 200 and not page.truncated


def test_a_100_mb_page_is_cut_at_the_cap(site: str) -> None:
    started = time.monotonic()
    page = web.fetch(site + "/huge", web.Policy(allow_private=True, max_bytes=1 << 20))
    assert page.truncated and len(page.text) == 1 << 20 and time.monotonic() - started < 5


def test_a_slow_page_ends_at_the_deadline(site: str) -> None:
    started = time.monotonic()
    with pytest.raises(web.FetchError, match="within"):
        web.fetch(site + "/slow", web.Policy(allow_private=True, timeout_s=1))
    assert time.monotonic() - started < 3


@pytest.mark.parametrize(
    ("path", "fragment"),
    [("/loop", "redirects"), ("/binary", "not a page of text"), ("/garbage", "could not be read")],
)
def test_bad_pages_end_in_a_reason(site: str, path: str, fragment: str) -> None:
    with pytest.raises(web.FetchError, match=fragment):
        web.fetch(site + path, ALLOWED)


@pytest.mark.parametrize(
    ("url", "fragment"),
    [("file:///etc/passwd", "only http"), ("http://user:pw@example.org/", "user name"), ("http:///x", "no host")],
)
def test_urls_that_are_not_web_pages_are_refused(url: str, fragment: str) -> None:
    with pytest.raises(web.FetchError, match=fragment):
        web.check_url(url)


def test_no_such_host_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(*args: object, **kwargs: object) -> object:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(web.socket, "getaddrinfo", offline)
    with pytest.raises(web.FetchError, match="offline, or no such host"):
        web.fetch("https://example.org/")
