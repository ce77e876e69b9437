"""The server's security basics, on the real app in-process: the API key is
compared in constant time and never written to a log; every response carries
a Content-Security-Policy that forbids inline and remote scripts."""

from __future__ import annotations

import hmac
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from edgeoss import logs
from edgeoss.paths import paths
from edgeoss.server import guard
from edgeoss.server.options import ServeOptions
from modelless_host import modelless_client

KEY = "s3cret-key-for-the-test"


def _client(tmp_path: Path, **options: object) -> TestClient:
    return modelless_client(tmp_path, ServeOptions(**options))  # type: ignore[arg-type]


@pytest.mark.parametrize("path", ["/", "/static/app.js", "/v1/models", "/health", "/api/tags"])
def test_every_response_carries_the_policy(tmp_path: Path, path: str) -> None:
    r = _client(tmp_path).get(path)
    policy = r.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "default-src 'self'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy and "http" not in policy
    assert r.headers["x-content-type-options"] == "nosniff"


def test_the_key_is_compared_in_constant_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    original = hmac.compare_digest

    def recording(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return original(a, b)

    monkeypatch.setattr(guard.hmac, "compare_digest", recording)
    client = _client(tmp_path, api_key=KEY)
    assert client.get("/v1/models").status_code == 401
    assert client.get("/v1/models", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/v1/models", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
    assert client.get("/api/tags", headers={"X-Api-Key": KEY}).status_code == 200
    assert len(calls) == 4 and all(b == KEY.encode() for _, b in calls)


def test_the_key_never_reaches_a_log(tmp_path: Path) -> None:
    logs.setup(2)
    client = _client(tmp_path, api_key=KEY, log_prompts=True)
    client.get("/v1/models", headers={"Authorization": f"Bearer {KEY}"})
    client.post(
        "/v1/chat/completions",
        headers={"Authorization": f"Bearer {KEY}"},
        json={"messages": [{"role": "user", "content": "hi"}]},
    )
    client.get("/v1/models", headers={"Authorization": f"Bearer {KEY}-wrong"})
    text = paths().log_file.read_text(encoding="utf-8")
    assert '"GET /v1/models" 200' in text  # the access log was written
    assert KEY not in text
