"""`edgeoss serve` as a process: the demo fallback, keep-alive, metrics, the
access log, a model that fails to load, CORS, the time limit."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

import needs_llama
from server_process import HELLO, free_port, running_server, wait_ready


def test_with_no_model_installed_it_serves_the_demo_model_under_a_banner(edgeoss_home: Path) -> None:
    needs_llama.llama_cpp()
    openai = pytest.importorskip("openai")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgeoss", "serve", "--port", str(port)],
        stdin=subprocess.DEVNULL,  # not a terminal: it does not ask to download, it falls back
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "EDGEOSS_HOME": str(edgeoss_home)},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc, 180)
        health = httpx.get(url + "/health").json()
        assert health["model"] == "demo" and health["demo"] is True
        client = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0)
        reply = client.chat.completions.create(model="demo", messages=HELLO, max_tokens=5)
        assert reply.usage is not None and reply.usage.completion_tokens == 5
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=30)
    assert "DEMO MODEL" in stderr and "RANDOM WEIGHTS" in stderr
    assert f"{url}/v1" in stderr
    # llama.cpp's own chatter (its loader, its thread changes while edgeoss times them) goes to
    # the log file, not the user's terminal, whatever backends the build has (RPC included).
    chatter = [line for line in stderr.splitlines() if line.startswith(("set_n_threads", "llama_", "load_tensors"))]
    assert not chatter, chatter[:5]


def test_keep_alive_unloads_when_idle_and_reloads_on_demand(tiny_gguf: Path) -> None:
    needs_llama.llama_cpp()
    with running_server(tiny_gguf, "--keep-alive", "1s") as url:
        body = {"messages": HELLO, "max_tokens": 3}
        assert httpx.post(url + "/v1/chat/completions", json=body).status_code == 200
        deadline = time.monotonic() + 15
        while httpx.get(url + "/health").json()["status"] != "unloaded":
            assert time.monotonic() < deadline, "the model was never unloaded"
            time.sleep(0.2)
        assert httpx.get(url + "/health").status_code == 200  # unloaded is healthy: it reloads on demand
        assert httpx.get(url + "/api/ps").json() == {"models": []}
        assert "edgeoss_model_loaded 0.0" in httpx.get(url + "/metrics").text
        r = httpx.post(url + "/v1/chat/completions", json=body, timeout=60)
        assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] == 3
        assert httpx.get(url + "/health").json()["status"] == "ready"


def test_metrics_count_requests_tokens_and_time_to_first_token(tiny_gguf: Path) -> None:
    needs_llama.llama_cpp()
    with running_server(tiny_gguf) as url:
        for _ in range(2):
            httpx.post(url + "/v1/chat/completions", json={"messages": HELLO, "max_tokens": 4})
        httpx.post(url + "/v1/chat/completions", content=b"{bad")
        text = httpx.get(url + "/metrics").text
    assert 'edgeoss_requests_total{route="/v1/chat/completions",status="200"} 2.0' in text
    assert 'edgeoss_requests_total{route="/v1/chat/completions",status="400"} 1.0' in text
    assert "edgeoss_generated_tokens_total 8.0" in text
    assert "edgeoss_time_to_first_token_seconds_count 2.0" in text
    assert "edgeoss_queue_depth" in text and "edgeoss_requests_in_flight 0.0" in text


@pytest.mark.parametrize("log_prompts", [False, True])
def test_access_log_leaves_prompts_out_unless_asked(tiny_gguf: Path, edgeoss_home: Path, log_prompts: bool) -> None:
    needs_llama.llama_cpp()
    from edgeoss.paths import paths

    secret = "my bank password is hunter2"
    with running_server(tiny_gguf, *(["--log-prompts"] if log_prompts else [])) as url:
        r = httpx.post(
            url + "/v1/chat/completions", json={"messages": [{"role": "user", "content": secret}], "max_tokens": 2}
        )
        assert r.status_code == 200
    text = paths().log_file.read_text()
    assert '"POST /v1/chat/completions" 200' in text
    assert (secret in text) is log_prompts


def test_a_model_that_fails_to_load_is_reported_not_crashed(tiny_gguf: Path, tmp_path: Path) -> None:
    needs_llama.llama_cpp()
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(tiny_gguf.read_bytes()[:5_000_000])  # truncated: verify refuses it
    with running_server(broken, ready=False) as url:
        deadline = time.monotonic() + 60
        while (health := httpx.get(url + "/health")).json()["status"] == "loading":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert health.status_code == 503 and health.json()["status"] == "failed"
        assert "refusing to load broken.gguf" in health.json()["error"]
        r = httpx.post(url + "/v1/chat/completions", json={"messages": HELLO})
        assert r.status_code == 503 and r.json()["error"]["code"] == "model_failed"


def test_cors_is_closed_unless_an_origin_is_named(tiny_gguf: Path) -> None:
    needs_llama.llama_cpp()
    preflight = {"Origin": "http://app.example", "Access-Control-Request-Method": "POST"}
    with running_server(tiny_gguf) as url:
        r = httpx.options(url + "/v1/chat/completions", headers=preflight)
        assert "access-control-allow-origin" not in r.headers
        r = httpx.get(url + "/v1/models", headers={"Origin": "http://app.example"})
        assert "access-control-allow-origin" not in r.headers
    with running_server(tiny_gguf, "--cors-origin", "http://app.example") as url:
        r = httpx.options(url + "/v1/chat/completions", headers=preflight)
        assert r.headers["access-control-allow-origin"] == "http://app.example"
        other = httpx.options(url + "/v1/chat/completions", headers={**preflight, "Origin": "http://evil.example"})
        assert "access-control-allow-origin" not in other.headers


def test_a_generation_is_cut_at_the_time_limit(tiny_gguf: Path) -> None:
    needs_llama.llama_cpp()
    from server_process import script_header

    endless = script_header("<|channel|>final<|message|>" + " and then" * 1500)
    with running_server(tiny_gguf, "--timeout", "1") as url:
        start = time.monotonic()
        r = httpx.post(url + "/v1/chat/completions", json={"messages": HELLO, "max_tokens": 3000}, headers=endless)
        took = time.monotonic() - start
    body = r.json()
    assert r.status_code == 200 and body["choices"][0]["finish_reason"] == "length"
    assert 0 < body["usage"]["completion_tokens"] < 3000 and took < 10
