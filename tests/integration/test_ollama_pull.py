"""`/api/pull` with the `ollama` client, against the imitation Hub: Ollama's
name (`gpt-oss:20b`), its streamed progress statuses, the model verified
before it is stored, a second pull that answers at once, and errors in
Ollama's shape. The server runs in this process (uvicorn on a thread) so that
huggingface_hub talks to the imitation Hub."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from edgeoss.server.options import ServeOptions
from edgeoss.weights.store import Store
from fake_hub import FakeHub, patched_hub
from modelless_host import modelless_app
from server_process import free_port

ollama = pytest.importorskip("ollama")
GGUF_REPO = "ggml-org/gpt-oss-20b-GGUF"
GGUF_FILE = "gpt-oss-20b-mxfp4.gguf"


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[tuple[str, FakeHub]]:
    with patched_hub(monkeypatch, tmp_path / "hf-home") as hub:
        model = tmp_path / "stand-in.gguf"
        model.write_bytes(b"GGUF")
        port = free_port()
        app = modelless_app(model, ServeOptions(port=port), name="stand-in", variant="custom")
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None)
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        try:
            yield f"http://127.0.0.1:{port}", hub
        finally:
            server.should_exit = True
            thread.join(30)


def test_pull_with_the_ollama_client(served: tuple[str, FakeHub], tiny_gguf: Path) -> None:
    url, hub = served
    hub.add_file(GGUF_REPO, GGUF_FILE, tiny_gguf.read_bytes())
    client = ollama.Client(host=url)
    statuses = [p.status for p in client.pull("gpt-oss:20b", stream=True)]
    assert statuses[0] == "pulling manifest" and statuses[-1] == "success"
    assert "verifying sha256 digest" in statuses and any(s.startswith("pulling ggml-org") for s in statuses)
    stored = Store().get("gpt-oss-20b")
    assert Store().entry_path(stored).read_bytes() == tiny_gguf.read_bytes()
    again = client.pull("gpt-oss:20b")  # not streamed; already stored: at once
    assert again.status == "success"
    client.copy("gpt-oss:20b", "mine")
    assert [m.name for m in Store().list()] == ["gpt-oss-20b", "mine"]
    client.delete("mine")
    assert [m.name for m in Store().list()] == ["gpt-oss-20b"]


def test_a_damaged_download_is_never_stored(served: tuple[str, FakeHub], tiny_gguf: Path) -> None:
    url, hub = served
    hub.add_file(GGUF_REPO, GGUF_FILE, tiny_gguf.read_bytes(), corrupt=True)  # a flipped byte on the wire
    with httpx.stream("POST", url + "/api/pull", json={"model": "gpt-oss:20b"}, timeout=120) as r:
        lines = [line for line in r.iter_lines() if line]
    assert '"error"' in lines[-1] and "status_code" not in lines[-1]
    assert Store().list() == []
    bad = httpx.post(url + "/api/pull", json={"model": "llama3:8b", "stream": False}, timeout=30)
    assert bad.status_code == 400 and "no gguf artifact" in bad.json()["error"]
