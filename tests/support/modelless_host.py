"""A test double: the real server app on a ModelHost that has no model, for
tests of what must be decided before a model is ever needed (bad bodies, the
guard's headers and key, model management on the store, pulls). A request
that does reach the model finds it failed to load (503 model_failed)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

from edgeoss.engines.base import LoadSettings, QueuedEngine
from edgeoss.server.app import create_app
from edgeoss.server.host import ModelHost, ModelInfo
from edgeoss.server.options import ServeOptions


def no_engine(path: Path, settings: LoadSettings, parallel: int) -> QueuedEngine:
    raise RuntimeError("this test double has no model: a request that reaches it was not refused early")


def modelless_app(model: Path, options: ServeOptions, name: str = "synthetic", variant: str = "gpt-oss-20b") -> FastAPI:
    """The app serving `model` (a stand-in file, or a stored model's folder) that never loads it."""
    info = ModelInfo(name, model, variant, is_demo=True, size_bytes=4)
    host = ModelHost(info, LoadSettings(), parallel=1, queue_size=1, keep_alive_s=None, engine_factory=no_engine)
    return create_app(host, options)


def modelless_client(tmp_path: Path, options: ServeOptions | None = None) -> TestClient:
    """A client of the app on a stand-in file (/api/tags reads its date); no lifespan, so nothing loads."""
    model = tmp_path / "stand-in.gguf"
    model.write_bytes(b"GGUF")
    app = modelless_app(model, options or ServeOptions())
    return TestClient(app, base_url="http://127.0.0.1:8734", raise_server_exceptions=False)
