"""An offline test double of the Hugging Face Hub's file endpoints.

`FakeHub` runs a small HTTP server on 127.0.0.1 (ephemeral port, daemon thread) that answers the requests
`huggingface_hub` 2.4 makes for:

* ``hf_hub_download``: ``HEAD`` then ``GET /{repo_id}/resolve/{revision}/{filename}``, the ``GET`` possibly with
  ``Range: bytes=N-`` when the client resumes after a dropped connection (206 + ``Content-Range``);
* ``HfApi.model_info(..., files_metadata=True)``: ``GET /api/models/{repo_id}[/revision/{revision}]?blobs=true``;
* ``HfApi.list_repo_files`` / ``list_repo_tree`` / ``verify_repo_checksums``: ``GET /api/models/{repo_id}/tree/...``;
* ``HfApi.get_paths_info``: ``POST /api/models/{repo_id}/paths-info/{revision}``;
* ``GET /api/agent-harnesses``: fetched once per process by ``build_hf_headers`` (user-agent agent detection) unless
  telemetry is disabled; answered with an empty registry.

Every file is served as an LFS file: ``ETag`` / ``X-Linked-Etag`` = sha256 of the content, ``X-Linked-Size`` and
``Content-Length`` = its size, ``X-Repo-Commit`` = a fixed fake commit sha. No ``X-Xet-Hash`` header and no
``Link: <...>; rel="xet-auth"`` are ever sent, so the client never switches to the Xet protocol and always downloads
over plain HTTP from this server. Only model repos are modelled (no ``datasets/`` / ``spaces/`` prefixes).

Errors carry the headers `huggingface_hub.utils.hf_raise_for_status` maps to its exception classes:
``X-Error-Code: RepoNotFound`` -> `RepositoryNotFoundError`, ``RevisionNotFound`` -> `RevisionNotFoundError`,
``EntryNotFound`` (with ``X-Repo-Commit``) -> `RemoteEntryNotFoundError`.

Fault knobs, per file (on the `HubFile` that `FakeHub.add_file` returns) or hub-wide (on `FakeHub`):

* ``cut_after``: the next ``cut_times`` (default 1) full GETs (no ``Range`` header) of the file announce the full
  ``Content-Length`` but the connection is closed after ``cut_after`` body bytes. The knob then clears itself, so a
  retry or a resume succeeds. A per-file cut is used before the hub-wide one.
* ``corrupt``: the content is served with one byte flipped while the advertised sha256 / ETag / size stay those of
  the original content.
* ``offline`` (hub-wide only): every request is answered ``503 Service Unavailable``.

Pointing `huggingface_hub` at the fake: ``HF_ENDPOINT`` is read once, when ``huggingface_hub.constants`` is first
imported (``ENDPOINT``, ``HUGGINGFACE_CO_URL_TEMPLATE``, the module-level ``huggingface_hub.hf_api.api`` instance
behind ``huggingface_hub.model_info`` & co. are all derived from it at import time). So either

* run the code under test in a subprocess whose environment has ``HF_ENDPOINT=hub.url`` (plus ``HF_HOME``), or
* pass ``endpoint=hub.url`` explicitly (``hf_hub_download(..., endpoint=...)``, ``HfApi(endpoint=...)``), or
* in-process, call `FakeHub.patch_huggingface_hub` with pytest's ``monkeypatch`` (patches the constants above,
  ``huggingface_hub.hf_api.api.endpoint``, and sets ``HF_ENDPOINT`` for subprocesses). `HfApi` objects created
  before the patch keep the endpoint they were created with.

The same holds for ``HF_HOME`` / ``HF_HUB_CACHE`` / ``HF_HUB_OFFLINE`` (see `isolate_huggingface_hub`), and
`skip_retry_sleeps` removes the client's back-off sleeps (1+2+4+8+8 s before an unreachable Hub is reported).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import socket
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace, TracebackType
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, unquote, urlsplit

if TYPE_CHECKING:
    import pytest

_HOST = "127.0.0.1"
_LAST_MODIFIED = "2025-08-05T00:00:00.000Z"
_RANGE_RE = re.compile(r"bytes=(\d*)-(\d*)")
_TRUE = {"1", "true", "True"}


@dataclass(frozen=True)
class LoggedRequest:
    """One request as the fake received it."""

    method: str
    path: str  # URL path, percent-decoded, without the query string
    query: str
    range: str | None  # the raw Range header, if any

    @property
    def range_start(self) -> int | None:
        """First byte asked for by a ``Range: bytes=N-...`` header (None without one)."""
        match = _RANGE_RE.fullmatch(self.range.strip()) if self.range else None
        return int(match.group(1)) if match and match.group(1) else None


@dataclass
class HubFile:
    """A file stored in the fake, with its per-file fault knobs (mutable while the hub runs)."""

    path: str
    data: bytes
    cut_after: int | None = None
    cut_times: int = 1
    corrupt: bool = False
    sha256: str = field(init=False)

    def __post_init__(self) -> None:
        self.sha256 = hashlib.sha256(self.data).hexdigest()

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def lfs_pointer(self) -> bytes:
        return f"version https://git-lfs.github.com/spec/v1\noid sha256:{self.sha256}\nsize {self.size}\n".encode()

    @property
    def blob_id(self) -> str:
        """Git OID of the LFS pointer file (what the Hub reports as ``blobId`` / ``oid`` for LFS files)."""
        pointer = self.lfs_pointer
        return hashlib.sha1(b"blob %d\0" % len(pointer) + pointer).hexdigest()

    def served_bytes(self, corrupt: bool) -> bytes:
        """The bytes actually sent: the content, or the content with its middle byte flipped."""
        if not corrupt or not self.data:
            return self.data
        middle = len(self.data) // 2
        return self.data[:middle] + bytes([self.data[middle] ^ 0xFF]) + self.data[middle + 1 :]

    def tree_entry(self) -> dict[str, object]:
        """The entry the tree / paths-info endpoints return for this file."""
        return {
            "type": "file",
            "oid": self.blob_id,
            "size": self.size,
            "path": self.path,
            "lfs": {"oid": self.sha256, "size": self.size, "pointerSize": len(self.lfs_pointer)},
        }


@dataclass
class _Revision:
    commit: str
    files: dict[str, HubFile] = field(default_factory=dict)


class _HubError(Exception):
    """Raised inside the request handler to answer with an error status and Hub error headers."""

    def __init__(self, status: int, message: str, code: str | None = None, commit: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.commit = commit


class FakeHub:
    """A fake Hugging Face Hub on 127.0.0.1; use as a context manager (or call `start` / `close`)."""

    def __init__(self) -> None:
        self.cut_after: int | None = None  # hub-wide: applies to the next full GET of any file
        self.cut_times: int = 1
        self.corrupt: bool = False
        self.offline: bool = False
        self._repos: dict[str, dict[str, _Revision]] = {}  # repo_id -> revision name -> revision
        self._log: list[LoggedRequest] = []
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------------------------

    def start(self) -> FakeHub:
        if self._server is not None:
            raise RuntimeError("FakeHub already started")
        self._server = _Server(self)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="FakeHub", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving, drop idle keep-alive connections and join every server thread."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.shutdown()  # stops the accept loop
        server.drop_connections()  # wakes handler threads blocked on idle keep-alive connections
        server.server_close()  # closes the listening socket and joins the handler threads
        thread.join()
        self._server = self._thread = None

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeHub is not running")
        return f"http://{_HOST}:{self._server.server_address[1]}"

    # -- content ------------------------------------------------------------------------------------------------

    @staticmethod
    def commit_sha(repo_id: str, revision: str = "main") -> str:
        """The fixed fake commit sha (40 hex) that ``revision`` of ``repo_id`` resolves to."""
        return hashlib.sha1(f"fake-hub:{repo_id}@{revision}".encode()).hexdigest()

    def add_file(
        self,
        repo_id: str,
        filename: str,
        data: bytes,
        revision: str = "main",
        *,
        cut_after: int | None = None,
        cut_times: int = 1,
        corrupt: bool = False,
    ) -> HubFile:
        """Store ``data`` as ``filename`` in ``repo_id`` at ``revision``; returns the file so knobs can be changed."""
        hub_file = HubFile(filename, data, cut_after=cut_after, cut_times=cut_times, corrupt=corrupt)
        with self._lock:
            revisions = self._repos.setdefault(repo_id, {})
            rev = revisions.setdefault(revision, _Revision(self.commit_sha(repo_id, revision)))
            rev.files[filename] = hub_file
        return hub_file

    def get_file(self, repo_id: str, filename: str, revision: str = "main") -> HubFile:
        return self._repos[repo_id][revision].files[filename]

    # -- request log --------------------------------------------------------------------------------------------

    @property
    def log(self) -> list[LoggedRequest]:
        """A snapshot of every request received so far, in arrival order."""
        with self._lock:
            return list(self._log)

    def requests(self, method: str | None = None, path_contains: str = "") -> list[LoggedRequest]:
        return [r for r in self.log if (method is None or r.method == method) and path_contains in r.path]

    def clear_log(self) -> None:
        with self._lock:
            self._log.clear()

    # -- pointing huggingface_hub here --------------------------------------------------------------------------

    def patch_huggingface_hub(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Make an already imported `huggingface_hub` talk to this fake (undone by ``monkeypatch`` at teardown).

        Patches what ``HF_ENDPOINT`` was turned into at import time, and sets ``HF_ENDPOINT`` itself so that
        subprocesses started by the test see the fake too.
        """
        from huggingface_hub import constants, hf_api

        monkeypatch.setenv("HF_ENDPOINT", self.url)
        monkeypatch.setattr(constants, "ENDPOINT", self.url)
        monkeypatch.setattr(
            constants, "HUGGINGFACE_CO_URL_TEMPLATE", self.url + "/{repo_id}/resolve/{revision}/{filename}"
        )
        monkeypatch.setattr(hf_api.api, "endpoint", self.url)

    # -- request handling (called from server threads) ----------------------------------------------------------

    def _record(self, request: LoggedRequest) -> None:
        with self._lock:
            self._log.append(request)

    def _revision(self, repo_id: str, revision: str) -> _Revision:
        with self._lock:
            revisions = self._repos.get(repo_id)
            if revisions is None:
                raise _HubError(404, "Repository not found", code="RepoNotFound")
            if revision in revisions:
                return revisions[revision]
            for rev in revisions.values():
                if revision == rev.commit:
                    return rev
            raise _HubError(404, f"Invalid rev id: {revision}", code="RevisionNotFound")

    def _split_repo(self, segments: list[str]) -> tuple[str, list[str]]:
        """Split ``org/name/rest...`` (or ``name/rest...``) into the repo id and the rest, using known repos."""
        with self._lock:
            known = set(self._repos)
        for n in (2, 1):
            if len(segments) >= n and "/".join(segments[:n]) in known:
                return "/".join(segments[:n]), segments[n:]
        raise _HubError(404, "Repository not found", code="RepoNotFound")

    def _take_fault(self, hub_file: HubFile) -> tuple[int | None, bool]:
        """The (cut_after, corrupt) to apply to a full GET of ``hub_file``; consumes one-shot cuts."""
        with self._lock:
            corrupt = hub_file.corrupt or self.corrupt
            if hub_file.cut_after is not None:
                cut = hub_file.cut_after
                hub_file.cut_times -= 1
                if hub_file.cut_times <= 0:
                    hub_file.cut_after, hub_file.cut_times = None, 1
            elif self.cut_after is not None:
                cut = self.cut_after
                self.cut_times -= 1
                if self.cut_times <= 0:
                    self.cut_after, self.cut_times = None, 1
            else:
                cut = None
            return cut, corrupt


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # so that server_close() joins every handler thread (daemon ones are not tracked)

    def __init__(self, hub: FakeHub) -> None:
        self.hub = hub
        self._connections: set[socket.socket] = set()
        self._conn_lock = threading.Lock()
        self._closing = False
        super().__init__((_HOST, 0), _Handler)

    def track(self, conn: socket.socket) -> None:
        with self._conn_lock:
            self._connections.add(conn)
            if self._closing:
                _shutdown_quietly(conn)

    def untrack(self, conn: socket.socket) -> None:
        with self._conn_lock:
            self._connections.discard(conn)

    def drop_connections(self) -> None:
        with self._conn_lock:
            self._closing = True
            for conn in self._connections:
                _shutdown_quietly(conn)

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client hanging up mid-response is expected here (cut downloads, retries)


def _shutdown_quietly(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed by the client
        conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real Hub; every response carries a Content-Length
    timeout = 30  # idle keep-alive connections give up eventually even if never dropped
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def log_message(self, format: str, *args: object) -> None:
        pass  # the hub keeps its own log

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    # -- plumbing -----------------------------------------------------------------------------------------------

    @property
    def hub(self) -> FakeHub:
        return self.server.hub

    def _dispatch(self) -> None:
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.hub._record(LoggedRequest(self.command, path, parts.query, self.headers.get("Range")))
        try:
            if self.hub.offline:
                raise _HubError(503, "Service Unavailable (FakeHub is offline)")
            self._route(parts.path, parse_qs(parts.query), body)
        except _HubError as err:
            headers = {"X-Error-Message": err.message}
            if err.code is not None:
                headers["X-Error-Code"] = err.code
            if err.commit is not None:
                headers["X-Repo-Commit"] = err.commit
            self._send(err.status, json.dumps({"error": err.message}).encode(), headers, "application/json")

    def _route(self, raw_path: str, query: dict[str, list[str]], body: bytes) -> None:
        segments = [unquote(s) for s in raw_path.strip("/").split("/")]
        if self.command in ("GET", "HEAD") and segments == ["api", "agent-harnesses"]:
            return self._send_json({"standardEnvVars": [], "harnesses": {}})
        if segments[:2] == ["api", "models"]:
            return self._api_models(segments[2:], query, body)
        if "/resolve/" in raw_path and self.command in ("GET", "HEAD"):
            repo_part, _, rest = raw_path.strip("/").partition("/resolve/")
            revision, _, filename = rest.partition("/")
            return self._resolve(unquote(repo_part), unquote(revision), unquote(filename))
        raise _HubError(404, "Not Found")

    def _send(self, status: int, body: bytes, headers: dict[str, str], content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, payload: object, headers: dict[str, str] | None = None) -> None:
        self._send(200, json.dumps(payload).encode(), headers or {}, "application/json")

    # -- /{repo_id}/resolve/{revision}/{filename} ---------------------------------------------------------------

    def _resolve(self, repo_id: str, revision: str, filename: str) -> None:
        rev = self.hub._revision(repo_id, revision)
        hub_file = rev.files.get(filename)
        if hub_file is None:
            raise _HubError(404, "Entry not found", code="EntryNotFound", commit=rev.commit)
        headers = {
            "X-Repo-Commit": rev.commit,
            "ETag": f'"{hub_file.sha256}"',
            "X-Linked-Etag": f'"{hub_file.sha256}"',
            "X-Linked-Size": str(hub_file.size),
            "Accept-Ranges": "bytes",
            "Content-Disposition": f'attachment; filename="{filename.rsplit("/", 1)[-1]}";',
        }
        range_header = self.headers.get("Range")
        if self.command == "HEAD":
            return self._send(200, hub_file.data, headers, "application/octet-stream")  # headers only
        if range_header is None:
            cut, corrupt = self.hub._take_fault(hub_file)
            data = hub_file.served_bytes(corrupt)
            if cut is None:
                return self._send(200, data, headers, "application/octet-stream")
            self._send_cut(data, headers, cut)
            return None
        corrupt = hub_file.corrupt or self.hub.corrupt
        return self._send_range(hub_file.served_bytes(corrupt), headers, range_header)

    def _send_cut(self, data: bytes, headers: dict[str, str], cut: int) -> None:
        """Announce the full body, send only ``cut`` bytes of it, then hang up."""
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data[:cut])
        self.close_connection = True

    def _send_range(self, data: bytes, headers: dict[str, str], range_header: str) -> None:
        size = len(data)
        match = _RANGE_RE.fullmatch(range_header.strip())
        if match is None or match.group(1) == match.group(2) == "":
            return self._send(200, data, headers, "application/octet-stream")  # unsupported form: ignore Range
        first, last = match.groups()
        if first == "":  # suffix range: the last N bytes
            start, end = max(size - int(last), 0), size - 1
        else:
            start, end = int(first), min(int(last), size - 1) if last else size - 1
        if start >= size or start > end:
            raise _HubError(416, "Range Not Satisfiable") from None
        headers = {**headers, "Content-Range": f"bytes {start}-{end}/{size}"}
        self._send(206, data[start : end + 1], headers, "application/octet-stream")

    # -- /api/models/... ----------------------------------------------------------------------------------------

    def _api_models(self, segments: list[str], query: dict[str, list[str]], body: bytes) -> None:
        repo_id, rest = self.hub._split_repo(segments)
        if self.command in ("GET", "HEAD") and (rest == [] or (len(rest) == 2 and rest[0] == "revision")):
            rev = self.hub._revision(repo_id, rest[1] if rest else "main")
            return self._send_json(self._model_info(repo_id, rev, blobs=query.get("blobs", [""])[0] in _TRUE))
        if self.command in ("GET", "HEAD") and len(rest) >= 2 and rest[0] == "tree":
            rev = self.hub._revision(repo_id, rest[1])
            recursive = query.get("recursive", [""])[0] in _TRUE
            return self._send_json(_tree(rev.files.values(), "/".join(rest[2:]), recursive))
        if self.command == "POST" and len(rest) == 2 and rest[0] == "paths-info":
            rev = self.hub._revision(repo_id, rest[1])
            paths = parse_qs(body.decode()).get("paths", [])
            return self._send_json(_paths_info(rev.files.values(), paths))
        raise _HubError(404, "Not Found")

    @staticmethod
    def _model_info(repo_id: str, rev: _Revision, blobs: bool) -> dict[str, object]:
        siblings: list[dict[str, object]] = []
        for hub_file in sorted(rev.files.values(), key=lambda f: f.path):
            sibling: dict[str, object] = {"rfilename": hub_file.path}
            if blobs:
                sibling.update(
                    size=hub_file.size,
                    blobId=hub_file.blob_id,
                    lfs={"sha256": hub_file.sha256, "size": hub_file.size, "pointerSize": len(hub_file.lfs_pointer)},
                )
            siblings.append(sibling)
        return {
            "_id": rev.commit[:24],
            "id": repo_id,
            "modelId": repo_id,
            "author": repo_id.split("/")[0] if "/" in repo_id else None,
            "sha": rev.commit,
            "lastModified": _LAST_MODIFIED,
            "createdAt": _LAST_MODIFIED,
            "private": False,
            "gated": False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "siblings": siblings,
        }


def _folder_entry(path: str) -> dict[str, object]:
    return {"type": "directory", "oid": hashlib.sha1(f"tree:{path}".encode()).hexdigest(), "size": 0, "path": path}


def _tree(files: Iterable[HubFile], prefix: str, recursive: bool) -> list[dict[str, object]]:
    """What ``GET /api/models/{repo}/tree/{rev}/{prefix}`` lists: files and folders under ``prefix``."""
    base = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
    entries: dict[str, dict[str, object]] = {}
    for hub_file in files:
        if not hub_file.path.startswith(base):
            continue
        parts = hub_file.path[len(base) :].split("/")
        depth = len(parts) if recursive else 1
        for i in range(1, min(depth, len(parts) - 1) + 1):  # the folders on the way
            folder = base + "/".join(parts[:i])
            entries.setdefault(folder, _folder_entry(folder))
        if recursive or len(parts) == 1:
            entries[hub_file.path] = hub_file.tree_entry()
    if base and not entries:
        raise _HubError(404, f"{prefix} does not exist on this revision", code="EntryNotFound")
    return [entries[path] for path in sorted(entries)]


def _paths_info(files: Iterable[HubFile], paths: list[str]) -> list[dict[str, object]]:
    """What ``POST /api/models/{repo}/paths-info/{rev}`` returns: the entries that exist, unknown paths skipped."""
    by_path = {f.path: f for f in files}
    out: list[dict[str, object]] = []
    for path in paths:
        path = path.strip("/")
        if path in by_path:
            out.append(by_path[path].tree_entry())
        elif any(p.startswith(path + "/") for p in by_path):
            out.append(_folder_entry(path))
    return out


# -- helpers for pointing an imported huggingface_hub somewhere safe ------------------------------------------------


def isolate_huggingface_hub(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """Keep `huggingface_hub`'s cache, token and agent registry under ``home``, online, with no token.

    Both the environment (for subprocesses) and ``huggingface_hub.constants`` (read from the environment once, at
    import) are patched; ``monkeypatch`` undoes it all.
    """
    from huggingface_hub import constants

    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_CACHE", str(home / "hub"))
    paths = {
        "HF_HOME": home,
        "HF_HUB_CACHE": home / "hub",
        "HF_ASSETS_CACHE": home / "assets",
        "HF_XET_CACHE": home / "xet",
        "HF_TOKEN_PATH": home / "token",
        "HF_STORED_TOKENS_PATH": home / "stored_tokens",
        "AGENT_HARNESSES_PATH": home / ".agent_harnesses.json",
    }
    for name, path in paths.items():
        monkeypatch.setattr(constants, name, str(path))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)


def skip_retry_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Make `huggingface_hub`'s retry back-off instantaneous; returns the list the skipped sleeps are recorded in.

    Only the ``time`` seen by ``huggingface_hub.utils._http`` (request back-off) and ``huggingface_hub.file_download``
    (the 1 s pause before resuming a dropped download) is replaced; both use nothing but ``time.sleep``.
    """
    from huggingface_hub import file_download
    from huggingface_hub.utils import _http

    slept: list[float] = []
    fake_time = SimpleNamespace(sleep=slept.append)
    monkeypatch.setattr(_http, "time", fake_time)
    monkeypatch.setattr(file_download, "time", fake_time)
    return slept


@contextlib.contextmanager
def patched_hub(monkeypatch: pytest.MonkeyPatch, home: Path) -> Iterator[FakeHub]:
    """A running FakeHub that `huggingface_hub` talks to: isolated under ``home``
    (`isolate_huggingface_hub`), retry sleeps skipped, closed on exit."""
    isolate_huggingface_hub(monkeypatch, home)
    skip_retry_sleeps(monkeypatch)
    with FakeHub() as fake:
        fake.patch_huggingface_hub(monkeypatch)
        yield fake
