"""Model management the Ollama way on the real app in-process: /api/delete and
/api/copy map onto the store (with the bodies the `ollama` client sends), and
Ollama's names for gpt-oss (`gpt-oss:20b`, `gpt-oss:120b`) resolve, as they
do for `edgeoss pull`."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from edgeoss import spec
from edgeoss.server.options import ServeOptions
from edgeoss.weights import catalog, importer
from edgeoss.weights.pull import resolve
from edgeoss.weights.store import Store
from modelless_host import modelless_app
from onnx_layout import onnx_layout_double


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    importer.import_path(onnx_layout_double(tmp_path / "served"), name="served")
    importer.import_path(onnx_layout_double(tmp_path / "other"), name="other")
    app = modelless_app(Store().folder("served"), ServeOptions(), name="served")
    return TestClient(app, base_url="http://127.0.0.1:8734")


def names() -> list[str]:
    return [m.name for m in Store().list()]


def test_copy_then_delete(client: TestClient) -> None:
    r = client.post("/api/copy", json={"source": "other", "destination": "other-copy"})
    assert r.status_code == 200, r.text
    assert names() == ["other", "other-copy", "served"]
    copied = Store().get("other-copy")
    assert copied.files == Store().get("other").files and copied.source["copied_from"] == "other"
    r = client.request("DELETE", "/api/delete", json={"model": "other-copy:latest"})
    assert r.status_code == 200, r.text
    assert names() == ["other", "served"]


def test_errors_in_ollamas_shape(client: TestClient) -> None:
    missing = client.request("DELETE", "/api/delete", json={"model": "nothing"})
    assert missing.status_code == 404 and missing.json() == {"error": "model 'nothing' not found"}
    served = client.request("DELETE", "/api/delete", json={"model": "served"})
    assert served.status_code == 409 and "this server runs" in served.json()["error"]
    assert "served" in names()
    taken = client.post("/api/copy", json={"source": "other", "destination": "served"})
    assert taken.status_code == 400 and "already in the store" in taken.json()["error"]
    bad = client.post("/api/copy", json={"source": "other", "destination": "../escape"})
    assert bad.status_code == 400 and "not a usable model name" in bad.json()["error"]
    assert not (Store().root.parent / "escape").exists()
    assert client.post("/api/copy", json={"source": "nothing", "destination": "x"}).status_code == 404
    assert client.post("/api/copy", json={"source": 5}).status_code == 400


def test_ollama_names_for_gpt_oss() -> None:
    assert catalog.find("gpt-oss:20b") == catalog.find("20b")
    assert catalog.find("gpt-oss:120b") == catalog.find("gpt-oss-120b")
    assert catalog.find("gpt-oss") == catalog.find("20b")  # Ollama's default tag
    assert resolve("gpt-oss:120b", "gguf").repo == "ggml-org/gpt-oss-120b-GGUF"
    assert spec.ollama_name("gpt-oss-120b") == "gpt-oss:120b"
