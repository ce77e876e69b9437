"""The real `huggingface_hub` client (2.4) driven against `fake_hub.FakeHub`, offline.

What these tests pin down about huggingface_hub 2.4.0 (so product code can rely on it / map it):

* Endpoint: ``HF_ENDPOINT`` is read at import; in-process the fake is wired in by `FakeHub.patch_huggingface_hub`,
  a fresh process just needs ``HF_ENDPOINT`` (and ``HF_HOME``) in its environment.
* Resume: only *within* one ``hf_hub_download`` call. A dropped connection (``httpx2.RemoteProtocolError`` /
  ``ConnectError`` / timeout while streaming) makes ``http_get`` sleep 1 s and retry with ``Range: bytes=N-``, N
  being what was written to the temporary file. The body is consumed in ``constants.DOWNLOAD_CHUNK_SIZE`` (10 MiB)
  chunks and a partly received chunk is lost, so N is a multiple of 10 MiB (0 for smaller files: full GET again).
  Up to 5 retries in a row without progress, then the transport error itself (e.g. ``httpx2.RemoteProtocolError``)
  escapes ``hf_hub_download``. The temporary file is process-unique (``<etag>.<8 hex>.incomplete`` in
  ``<cache>/models--org--name/blobs/``, or ``<shorthash>.<etag>.<8 hex>.incomplete`` in
  ``<local_dir>/.cache/huggingface/download/``), opened ``"wb"`` and deleted when the call fails: a later call
  never resumes, it downloads from byte 0 (same in cache and local_dir mode).
* Integrity: ``hf_hub_download`` checks the size only, never the sha256 of what it received (on the HTTP path);
  ``HfApi.verify_repo_checksums`` compares local files with the Hub's sha256 afterwards.
* Errors: unknown repo -> ``RepositoryNotFoundError``, unknown revision -> ``RevisionNotFoundError``, unknown file ->
  ``RemoteEntryNotFoundError`` (all ``HfHubHTTPError``). Hub unreachable or down (connection refused, 5xx) and file
  not cached -> ``LocalEntryNotFoundError`` with ``__cause__`` the ``httpx2.ConnectError`` / ``HfHubHTTPError``, after
  ~23 s of back-off; ``HF_HUB_OFFLINE=1`` and file not cached -> ``LocalEntryNotFoundError`` with ``__cause__``
  ``OfflineModeIsEnabled`` (a ``ConnectionError``), immediately. ``HfApi`` calls do not retry and raise the raw
  error: ``httpx2.ConnectError``, ``HfHubHTTPError`` (503), ``OfflineModeIsEnabled``.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from huggingface_hub import HfApi, close_session, constants, hf_hub_download
from huggingface_hub.errors import (
    HfHubHTTPError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from fake_hub import FakeHub, isolate_huggingface_hub, skip_retry_sleeps

REPO = "fake-org/fake-model"
MiB = 1024 * 1024


def _payload(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _incomplete_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".incomplete")]


@pytest.fixture
def hf_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "hf-home"
    isolate_huggingface_hub(monkeypatch, home)
    return home


@pytest.fixture
def hub(hf_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    with FakeHub() as fake:
        fake.patch_huggingface_hub(monkeypatch)
        yield fake
        close_session()  # drop huggingface_hub's pooled keep-alive connections to this server


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    return skip_retry_sleeps(monkeypatch)


# -- plain downloads and metadata -----------------------------------------------------------------------------------


def test_hf_hub_download_to_cache(hub: FakeHub, hf_home: Path) -> None:
    data = _payload(100_000)
    hub.add_file(REPO, "model.safetensors", data)

    path = Path(hf_hub_download(REPO, "model.safetensors", revision="main"))

    assert path.read_bytes() == data
    commit = FakeHub.commit_sha(REPO)
    assert path == hf_home / "hub" / "models--fake-org--fake-model" / "snapshots" / commit / "model.safetensors"
    assert (hf_home / "hub" / "models--fake-org--fake-model" / "refs" / "main").read_text() == commit
    resolve = [(r.method, r.range) for r in hub.requests(path_contains="/resolve/")]
    assert resolve == [("HEAD", None), ("GET", None)]
    assert not [r for r in hub.log if "xet" in r.path.lower()]  # plain HTTP, never the Xet protocol


def test_hf_hub_download_to_local_dir_with_subfolder_and_commit_revision(hub: FakeHub, tmp_path: Path) -> None:
    data = _payload(5000)
    hub.add_file(REPO, "original/config.json", data)
    commit = FakeHub.commit_sha(REPO)

    path = Path(hf_hub_download(REPO, "original/config.json", revision=commit, local_dir=tmp_path / "out"))

    assert path == tmp_path / "out" / "original" / "config.json"
    assert path.read_bytes() == data
    assert hub.requests("HEAD")[0].path == f"/{REPO}/resolve/{commit}/original/config.json"


def test_model_info_with_files_metadata(hub: FakeHub) -> None:
    weights, config = _payload(70_000), b'{"hidden_size": 8}'
    hub.add_file(REPO, "model.safetensors", weights)
    hub.add_file(REPO, "config.json", config)

    info = HfApi().model_info(REPO, revision="main", files_metadata=True)

    assert info.id == REPO
    assert info.sha == FakeHub.commit_sha(REPO)
    assert info.siblings is not None
    siblings = {s.rfilename: s for s in info.siblings}
    assert set(siblings) == {"model.safetensors", "config.json"}
    for name, data in (("model.safetensors", weights), ("config.json", config)):
        sibling = siblings[name]
        assert sibling.size == len(data)
        assert sibling.lfs is not None
        assert sibling.lfs.sha256 == _sha256(data)
        assert sibling.lfs.size == len(data)
    assert hub.requests("GET", "/api/models/")[-1].query == "blobs=true"

    bare = HfApi().model_info(REPO)  # without files_metadata only the names come back
    assert bare.siblings is not None
    assert {s.size for s in bare.siblings} == {None}


def test_list_repo_files_and_get_paths_info(hub: FakeHub) -> None:
    hub.add_file(REPO, "config.json", b"{}")
    hub.add_file(REPO, "original/model.safetensors", _payload(3000))

    assert sorted(HfApi().list_repo_files(REPO)) == ["config.json", "original/model.safetensors"]

    infos = HfApi().get_paths_info(REPO, ["original/model.safetensors", "original", "missing.bin"], revision="main")
    by_path = {i.path: i for i in infos}
    assert set(by_path) == {"original/model.safetensors", "original"}
    entry = by_path["original/model.safetensors"]
    assert getattr(entry, "size", None) == 3000
    assert getattr(entry, "lfs", None) is not None


def test_not_found_errors(hub: FakeHub) -> None:
    hub.add_file(REPO, "config.json", b"{}")

    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("fake-org/missing", "config.json")
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(REPO, "config.json", revision="v9")
    with pytest.raises(RemoteEntryNotFoundError):
        hf_hub_download(REPO, "missing.json")
    with pytest.raises(RepositoryNotFoundError):
        HfApi().model_info("fake-org/missing")
    with pytest.raises(RevisionNotFoundError):
        HfApi().model_info(REPO, revision="v9")


# -- interrupted downloads ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["cache", "local_dir"])
def test_cut_download_is_resumed_with_a_range_request(
    hub: FakeHub, sleeps: list[float], hf_home: Path, tmp_path: Path, mode: str
) -> None:
    """One call: the GET is cut, huggingface_hub retries by itself with ``Range: bytes=<10 MiB>-`` and succeeds."""
    data = _payload(12 * MiB + 333)
    cut = 10 * MiB + 1234
    hub.add_file(REPO, "model.safetensors", data, cut_after=cut)

    if mode == "local_dir":
        path = hf_hub_download(REPO, "model.safetensors", revision="main", local_dir=tmp_path / "out")
    else:
        path = hf_hub_download(REPO, "model.safetensors", revision="main")

    assert _sha256(Path(path).read_bytes()) == _sha256(data)
    gets = hub.requests("GET", "/resolve/")
    assert [g.range for g in gets] == [None, f"bytes={10 * MiB}-"]  # resumed at the last full 10 MiB chunk
    start = gets[1].range_start
    assert start is not None and 0 < start <= cut
    assert sleeps == [1]  # http_get's pause before resuming
    assert not _incomplete_files(hf_home) and not _incomplete_files(tmp_path)


def test_resume_offset_follows_download_chunk_size(
    hub: FakeHub, sleeps: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Smaller chunks (read at call time) let a small file resume mid-way too."""
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 1024)
    data = _payload(20_000)
    hub.add_file(REPO, "tokenizer.json", data, cut_after=5000)

    path = hf_hub_download(REPO, "tokenizer.json")

    assert Path(path).read_bytes() == data
    assert [g.range for g in hub.requests("GET", "/resolve/")] == [None, "bytes=4096-"]


def test_cut_before_the_first_chunk_restarts_from_zero(hub: FakeHub, sleeps: list[float]) -> None:
    data = _payload(5000)
    hub.add_file(REPO, "config.json", data, cut_after=1000)

    path = hf_hub_download(REPO, "config.json")

    assert Path(path).read_bytes() == data
    assert [g.range for g in hub.requests("GET", "/resolve/")] == [None, None]  # nothing kept: full GET again
    assert sleeps == [1]


@pytest.mark.parametrize("mode", ["cache", "local_dir"])
def test_failed_download_leaves_nothing_to_resume(
    hub: FakeHub, sleeps: list[float], hf_home: Path, tmp_path: Path, mode: str
) -> None:
    """Six cuts in a row: the call gives up with the transport error; the next call starts again from byte 0."""
    data = _payload(5000)
    hub.add_file(REPO, "model.safetensors", data, cut_after=1000, cut_times=6)
    local_dir = tmp_path / "out" if mode == "local_dir" else None

    with pytest.raises(httpx2.RemoteProtocolError):
        hf_hub_download(REPO, "model.safetensors", local_dir=local_dir)
    assert sleeps == [1, 1, 1, 1, 1]
    assert len(hub.requests("GET", "/resolve/")) == 6
    assert not _incomplete_files(hf_home) and not _incomplete_files(tmp_path)

    hub.clear_log()
    path = hf_hub_download(REPO, "model.safetensors", local_dir=local_dir)

    assert Path(path).read_bytes() == data
    assert [g.range for g in hub.requests("GET", "/resolve/")] == [None]


# -- integrity -------------------------------------------------------------------------------------------------------


def test_corrupt_content_is_not_detected_by_hf_hub_download(hub: FakeHub, tmp_path: Path) -> None:
    data = _payload(64_000)
    hub.add_file(REPO, "model.safetensors", data, corrupt=True)
    out = tmp_path / "out"

    path = hf_hub_download(REPO, "model.safetensors", local_dir=out)  # no error: only the size is checked

    received = Path(path).read_bytes()
    info = HfApi().model_info(REPO, files_metadata=True)
    assert info.siblings is not None and info.siblings[0].lfs is not None
    advertised = info.siblings[0].lfs.sha256
    assert advertised == _sha256(data)
    assert len(received) == len(data)
    assert _sha256(received) != advertised

    check = HfApi().verify_repo_checksums(REPO, local_dir=out)
    assert [(m["path"], m["expected"], m["actual"]) for m in check.mismatches] == [
        ("model.safetensors", advertised, _sha256(received))
    ]


# -- Hub down, unreachable, or offline mode -------------------------------------------------------------------------


def test_hub_answering_503(hub: FakeHub, sleeps: list[float]) -> None:
    hub.add_file(REPO, "config.json", b"{}")
    hub.offline = True

    with pytest.raises(LocalEntryNotFoundError) as excinfo:
        hf_hub_download(REPO, "config.json")
    cause = excinfo.value.__cause__
    assert isinstance(cause, HfHubHTTPError)
    assert cause.response.status_code == 503
    assert len(hub.requests("HEAD")) == 7  # one quick try, then a retry with back-off: 1 + 5 retries
    assert sleeps == [1, 2, 4, 8, 8]

    with pytest.raises(HfHubHTTPError) as api_excinfo:
        HfApi().model_info(REPO)
    assert api_excinfo.value.response.status_code == 503


def test_hub_down_still_serves_cached_files(hub: FakeHub, sleeps: list[float]) -> None:
    hub.add_file(REPO, "config.json", b"{}")
    first = hf_hub_download(REPO, "config.json")
    hub.offline = True

    assert hf_hub_download(REPO, "config.json") == first
    assert sleeps == []


def test_unreachable_hub(hf_home: Path, sleeps: list[float], monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeHub() as gone:
        gone.patch_huggingface_hub(monkeypatch)  # then closed: nothing listens there any more, connection refused

    with pytest.raises(LocalEntryNotFoundError) as excinfo:
        hf_hub_download(REPO, "config.json")
    assert isinstance(excinfo.value.__cause__, httpx2.ConnectError)
    assert sleeps == [1, 2, 4, 8, 8]

    with pytest.raises(httpx2.ConnectError):
        HfApi().model_info(REPO)


def test_hf_hub_offline_mode(hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    """``HF_HUB_OFFLINE`` is read at import: in-process, patch ``constants.HF_HUB_OFFLINE``."""
    hub.add_file(REPO, "config.json", b"{}")
    hub.add_file(REPO, "model.safetensors", b"weights")
    cached = hf_hub_download(REPO, "config.json")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    hub.clear_log()

    assert hf_hub_download(REPO, "config.json") == cached
    with pytest.raises(LocalEntryNotFoundError) as excinfo:
        hf_hub_download(REPO, "model.safetensors")
    assert isinstance(excinfo.value.__cause__, OfflineModeIsEnabled)
    with pytest.raises(OfflineModeIsEnabled):
        HfApi().model_info(REPO)
    assert hub.log == []


# -- the environment variables, in a fresh process ------------------------------------------------------------------

_SUBPROCESS_SCRIPT = """
import sys
from huggingface_hub import constants, hf_hub_download
print(constants.ENDPOINT)
try:
    print(open(hf_hub_download(sys.argv[1], sys.argv[2]), "rb").read().decode())
except Exception as e:
    print(type(e).__name__, type(e.__cause__).__name__)
"""


@pytest.mark.parametrize("offline", [False, True])
def test_environment_variables_in_a_fresh_process(hub: FakeHub, offline: bool) -> None:
    hub.add_file(REPO, "config.json", b'{"ok": true}')
    env = {**os.environ, "HF_HUB_OFFLINE": "1"} if offline else dict(os.environ)  # HF_ENDPOINT/HF_HOME set above

    done = subprocess.run(
        [sys.executable, "-c", _SUBPROCESS_SCRIPT, REPO, "config.json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )

    expected = "LocalEntryNotFoundError OfflineModeIsEnabled" if offline else '{"ok": true}'
    assert done.stdout.splitlines() == [hub.url, expected]


# -- the fake itself ------------------------------------------------------------------------------------------------


def test_fake_serves_ranges_and_hub_headers(hub: FakeHub) -> None:
    hub.add_file(REPO, "a.bin", b"0123456789")
    host, port = hub.url.removeprefix("http://").split(":")
    assert host == "127.0.0.1"
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("HEAD", f"/{REPO}/resolve/main/a.bin")
        head = conn.getresponse()
        head.read()
        assert head.status == 200
        assert head.getheader("X-Repo-Commit") == FakeHub.commit_sha(REPO)
        assert head.getheader("X-Linked-Etag") == f'"{_sha256(b"0123456789")}"'
        assert head.getheader("X-Linked-Size") == head.getheader("Content-Length") == "10"
        assert head.getheader("X-Xet-Hash") is None and head.getheader("Link") is None

        conn.request("GET", f"/{REPO}/resolve/main/a.bin", headers={"Range": "bytes=6-"})
        part = conn.getresponse()
        assert (part.status, part.read(), part.getheader("Content-Range")) == (206, b"6789", "bytes 6-9/10")

        conn.request("GET", f"/{REPO}/resolve/main/a.bin", headers={"Range": "bytes=10-"})
        beyond = conn.getresponse()
        beyond.read()
        assert beyond.status == 416
    finally:
        conn.close()
    assert [r.range_start for r in hub.requests("GET")] == [6, 10]


def test_close_joins_every_thread_despite_idle_keep_alive_connections(hf_home: Path) -> None:
    before = set(threading.enumerate())
    fake = FakeHub().start()
    fake.add_file(REPO, "a.bin", b"abc")
    host, port = fake.url.removeprefix("http://").split(":")
    idle = http.client.HTTPConnection(host, int(port), timeout=10)
    idle.request("GET", f"/{REPO}/resolve/main/a.bin")
    assert idle.getresponse().read() == b"abc"  # the connection stays open, its handler thread waits on it

    started = time.monotonic()
    fake.close()

    assert time.monotonic() - started < 5
    assert set(threading.enumerate()) - before == set()
    with pytest.raises(OSError):
        http.client.HTTPConnection(host, int(port), timeout=5).request("GET", "/")
    idle.close()
