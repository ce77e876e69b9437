"""Fetching a page for the browser tool, without letting a page reach the user's
own network.

A model that browses can be steered by what it reads: a page may tell it to
open http://192.168.1.1/ (the router), http://127.0.0.1:11434/ (a local
service) or http://169.254.169.254/ (a cloud machine's credentials). So every
connection, the first and each redirect's, goes through `_GuardedBackend`,
which resolves the host itself and connects only to the address it checked:
global unicast addresses, never loopback, private, link-local, shared (CGNAT),
multicast, reserved or unspecified ones, unless the user allowed private
addresses. Checking at connect time leaves no window between the check and
the connection (DNS rebinding), and a host with any such address is refused
whole. Proxies from the environment are not used (they would hide the real
address). Bodies are read up to a byte cap and a deadline; only text is
decoded.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import time
import typing
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpcore

from edgeoss import __version__

USER_AGENT = f"edgeoss/{__version__} (gpt-oss browser tool)"
TEXT_TYPES = (
    "text/",
    "application/xhtml",
    "application/xml",
    "application/json",
    "application/rss",
    "application/atom",
)
REDIRECTS = (301, 302, 303, 307, 308)


class FetchError(Exception):
    """What the model is told when a page cannot be had (its message says why)."""


class Blocked(FetchError):
    """The address is one a page must not reach (unless the user allowed it)."""


@dataclass(frozen=True)
class Policy:
    allow_private: bool = False  # loopback and private addresses too (a loud, explicit choice); never link-local
    max_bytes: int = 5 << 20  # of one page's body; the rest is not read
    timeout_s: float = 20.0  # the whole fetch, redirects included
    max_redirects: int = 5


@dataclass
class Page:
    url: str  # after redirects
    status: int
    content_type: str
    text: str  # the body decoded
    truncated: bool  # the body was longer than the cap


def refusal(address: str, allow_private: bool) -> str | None:
    """Why a page may not reach `address`, or None when it may."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 zone (fe80::1%eth0) names an interface
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    if ip.is_multicast or ip.is_unspecified or (ip.is_reserved and not ip.is_private):
        return f"{ip} is not an address a page can be on"
    if ip.is_global:
        return None
    # Link-local stays refused even then: 169.254.169.254 is where a cloud machine keeps its keys.
    if allow_private and (ip.is_private or ip.is_loopback) and not ip.is_link_local:
        return None
    kind = (
        "loopback (this computer)"
        if ip.is_loopback
        else "link-local (this network segment; 169.254.169.254 is a cloud machine's metadata service)"
        if ip.is_link_local
        else "private (your own network)"
    )
    return f"{ip} is a {kind} address"


class _GuardedBackend(httpcore.SyncBackend):
    """httpcore's own sockets, connected only to addresses refusal() allows."""

    def __init__(self, allow_private: bool) -> None:
        self.allow_private = allow_private

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise FetchError(f"cannot resolve {host}: {exc} (offline, or no such host)") from None
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        for address in addresses:
            reason = refusal(address, self.allow_private)
            if reason is not None:
                raise Blocked(f"{host} is refused: {reason}; the browser reaches only the public internet")
        failure: Exception | None = None
        for address in addresses:
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        raise FetchError(f"cannot connect to {host}: {failure}")


def check_url(url: str) -> str:
    """`url` if it is an http(s) URL a fetch may try; FetchError (saying why) if not."""
    if len(url) > 4096:
        raise FetchError("the URL is over 4096 characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise FetchError(f"only http and https URLs can be opened, not {parts.scheme or 'a bare name'!r}")
    if not parts.hostname:
        raise FetchError(f"{url!r} names no host")
    if parts.username or parts.password:
        raise FetchError("URLs with a user name or password are not opened")
    return url


def _charset(content_type: str) -> str:
    for piece in content_type.split(";")[1:]:
        key, _, value = piece.strip().partition("=")
        if key.lower() == "charset" and value:
            return value.strip("\"' ")
    return "utf-8"


def fetch(url: str, policy: Policy | None = None, ssl_context: ssl.SSLContext | None = None) -> Page:
    """GET `url` (following redirects, each checked), its body capped; FetchError says why not."""
    policy = policy or Policy()
    deadline = time.monotonic() + policy.timeout_s
    context = ssl_context or ssl.create_default_context()
    with httpcore.ConnectionPool(
        ssl_context=context, network_backend=_GuardedBackend(policy.allow_private), max_connections=4
    ) as pool:
        for _ in range(policy.max_redirects + 1):
            check_url(url)
            left = deadline - time.monotonic()
            if left <= 0:
                raise FetchError(f"the page did not arrive within {policy.timeout_s:g} s")
            headers = [
                (b"User-Agent", USER_AGENT.encode()),
                (b"Accept", b"text/html,application/xhtml+xml,text/plain;q=0.9,*/*;q=0.5"),
                (b"Accept-Encoding", b"identity"),
            ]
            timeouts = {"connect": min(left, 10.0), "read": min(left, 10.0), "write": 10.0, "pool": 10.0}
            try:
                with pool.stream("GET", url, headers=headers, extensions={"timeout": timeouts}) as response:
                    found = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in response.headers}
                    if response.status in REDIRECTS and "location" in found:
                        url = urljoin(url, found["location"])
                        continue
                    content_type = found.get("content-type", "text/html")
                    if not content_type.lower().startswith(TEXT_TYPES):
                        raise FetchError(f"{url} is {content_type.split(';')[0]}, not a page of text")
                    body, truncated = bytearray(), False
                    for chunk in response.iter_stream():
                        body += chunk
                        if len(body) > policy.max_bytes:
                            del body[policy.max_bytes :]
                            truncated = True
                            break
                        if time.monotonic() > deadline:
                            raise FetchError(f"the page did not arrive within {policy.timeout_s:g} s")
            except httpcore.TimeoutException:
                raise FetchError(f"{url} did not answer within the time limit") from None
            except (httpcore.NetworkError, httpcore.ProtocolError) as exc:
                raise FetchError(f"{url} could not be read: {exc}") from None
            except httpcore.UnsupportedProtocol as exc:
                raise FetchError(str(exc)) from None
            charset = _charset(content_type)
            try:
                text = bytes(body).decode(charset, errors="replace")
            except LookupError:
                text = bytes(body).decode("utf-8", errors="replace")
            return Page(url, response.status, content_type, text, truncated)
    raise FetchError(f"more than {policy.max_redirects} redirects")
