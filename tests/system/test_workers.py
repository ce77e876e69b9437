"""Workers for real, on loopback: two `edgeoss worker` processes with a small --mem, and a
main that places a 20b-shape model (4 layers) across its own memory and both of them.

- the pooled logits equal a local run of the same GGUF;
- `edgeoss serve --workers` streams a chat completion to a real client (openai);
- a worker killed mid-request ends the client's stream with a clear error, the server stays
  up and /health says which worker was lost;
- a worker of another protocol version, and a worker that refuses this machine's address,
  are each reported with their fix.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import numpy as np
import pytest

import needs_llama
from edgeoss.errors import WorkerError
from rpc_double import RpcServerDouble
from server_process import free_port, user_env, wait_ready

pytestmark = pytest.mark.slow

# What this machine gives the model: its host part (embedding, output matrix: 2.2 GiB for the
# 20b vocabulary) and two of the four layers; the other two must go to the workers.
LOCAL_MEMORY_GIB = "3.1"
WORKER_MEM = "300M"  # one 20b-shape layer (4 experts) and its compute buffer, not two
PROMPT = [200006, 1428, 200008, 13225, 200007, 200006, 173781, 200005]  # <|start|>user<|message|>...


def _rpc_or_fail() -> None:
    needs_llama.llama_cpp()
    from edgeoss.engines.llamacpp import rpc

    why = rpc.unsupported_reason()
    if why is not None:
        # Not a skip: the README's install builds llama.cpp with RPC, so this is a broken install.
        pytest.fail(f"{why}; {rpc.BUILD_HINT}")


@pytest.fixture(scope="module")
def gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _rpc_or_fail()
    from edgeoss.weights import synth
    from edgeoss.weights.gguf import convert

    work = tmp_path_factory.mktemp("pooled")
    hp = synth.hparams_for("20b", layers=4, experts=4)
    checkpoint = synth.write_checkpoint(work / "checkpoint", synth.plan(hp, seed=3))
    out = work / "pooled-20b-4l.gguf"
    convert.convert(checkpoint, out)
    return out


def _wait_listening(port: int, proc: subprocess.Popen[str], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the worker exited with {proc.returncode}: {proc.communicate()[0][-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                pass
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"no worker listening on {port} within {seconds:.0f} s")


def start_worker(home: Path, *args: str) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgeoss", "worker", "--port", str(port), "--threads", "1", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=user_env(EDGEOSS_HOME=str(home)),
    )
    _wait_listening(port, proc)
    return proc, f"127.0.0.1:{port}"


def stop(proc: subprocess.Popen[str]) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.communicate()[0]


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[list[tuple[subprocess.Popen[str], str]]]:
    _rpc_or_fail()
    started = [start_worker(tmp_path / f"worker-{i}", "--mem", WORKER_MEM) for i in range(2)]
    yield started
    for proc, _ in started:
        stop(proc)


def _logits(path: Path, settings: object) -> np.ndarray:
    from edgeoss.engines.llamacpp.engine import open_llama

    llm, _ = open_llama(path, settings)  # type: ignore[arg-type]
    try:
        llm.eval(PROMPT)
        return np.array(llm.scores[len(PROMPT) - 1], dtype=np.float32).copy()
    finally:
        llm.close()


def test_pooled_logits_equal_a_local_run(
    gguf: Path, workers: list[tuple[subprocess.Popen[str], str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from edgeoss.engines.base import LoadSettings
    from edgeoss.runtime import pooled

    monkeypatch.setenv("EDGEOSS_LOCAL_MEMORY", LOCAL_MEMORY_GIB)
    endpoints = [endpoint for _, endpoint in workers]
    plan = pooled.plan_for(gguf, endpoints, 1024)
    assert plan.fits, plan.reasons
    layers = {s.place.endpoint or s.place.kind: s.layers for s in plan.shares}
    # Split across this machine and both workers, this machine's memory first.
    assert layers == {"cpu": 2, endpoints[0]: 1, endpoints[1]: 1}, plan.reasons
    assert plan.devices == [(f"{endpoints[0]}#0", 1), (f"{endpoints[1]}#0", 1), ("CPU", 1)]

    local = LoadSettings(context_length=1024, threads=1)
    settings = pooled.settings_for(local, gguf, endpoints, 1024)
    assert settings.workers == tuple(endpoints)
    expected = _logits(gguf, local)
    got = _logits(gguf, settings)
    # The same kernels on the same CPU, the hidden state passed as floats: equal to float noise.
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    assert int(np.argmax(got)) == int(np.argmax(expected))
    # The workers really held layers: each said so, and the weights crossed to them.
    for proc, _ in workers:
        proc.send_signal(signal.SIGINT)
    said = [proc.communicate(timeout=15)[0] for proc, _ in workers]
    for text in said:
        assert "connected: 127.0.0.1" in text, text[-1500:]


def test_serve_with_workers_streams_and_survives_a_lost_worker(
    gguf: Path, workers: list[tuple[subprocess.Popen[str], str]], tmp_path: Path
) -> None:
    openai = pytest.importorskip("openai")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    endpoints = ",".join(endpoint for _, endpoint in workers)
    command = ["serve", str(gguf), "--port", str(port), "--ctx", "2048", "--threads", "1", "--workers", endpoints]
    serve = subprocess.Popen(
        [sys.executable, "-m", "edgeoss", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=user_env(EDGEOSS_HOME=str(tmp_path / "home"), EDGEOSS_LOCAL_MEMORY=LOCAL_MEMORY_GIB),
    )
    try:
        wait_ready(url, serve, 240)
        assert serve.stderr is not None
        said = serve.stderr.readline().decode()
        while "workers:" not in said:  # the banner's lines come first
            line = serve.stderr.readline()
            assert line, "serve never said where the layers went"
            said = line.decode()
        assert said.startswith(f"workers: layers: 1 on {workers[0][1]}, 1 on {workers[1][1]}"), said
        health = httpx.get(url + "/health").json()
        assert [w["state"] for w in health["workers"]] == ["connected", "connected"]
        assert "1 on " + workers[0][1] in health["backend"] and "the output on this CPU" in health["backend"]

        client = openai.OpenAI(base_url=url + "/v1", api_key="unused")
        chunks = list(
            client.chat.completions.create(
                model=gguf.name, messages=[{"role": "user", "content": "Hi"}], max_tokens=6, stream=True
            )
        )
        assert chunks[-1].choices[0].finish_reason == "length"

        # A long reply, and the second worker killed once it is under way.
        with httpx.stream(
            "POST",
            url + "/v1/chat/completions",
            json={
                "model": gguf.name,
                "messages": [{"role": "user", "content": "Hi"}],
                "max_tokens": 4000,
                "stream": True,
            },
            timeout=120,
        ) as response:
            assert response.status_code == 200
            lines = response.iter_lines()
            seen = [next(lines) for _ in range(4)]  # the role chunk and some tokens: decoding across the workers
            workers[1][0].kill()
            rest = [line for line in lines if line]
        events = [json.loads(line.removeprefix("data: ")) for line in [*seen, *rest] if line.startswith("data: {")]
        error = events[-1].get("error")
        assert error is not None, events[-3:]
        assert error["code"] == "engine_failed"
        assert f"the worker at {workers[1][1]} was lost mid-run" in error["message"]
        assert "restart edgeoss serve once the worker is back" in error["message"]
        assert "data: [DONE]" not in rest

        assert serve.poll() is None, "the server went down with the worker"
        health = httpx.get(url + "/health")
        assert health.status_code == 503
        body = health.json()
        assert body["status"] == "failed" and "was lost mid-run" in body["error"]
        assert [w["state"] for w in body["workers"]] == ["connected", "lost"]
        again = httpx.post(
            url + "/v1/chat/completions",
            json={"model": gguf.name, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4},
            timeout=30,
        )
        assert again.status_code == 503 and "was lost mid-run" in again.json()["error"]["message"]
        assert serve.poll() is None
    finally:
        serve.send_signal(signal.SIGTERM)
        try:
            serve.wait(20)
        except subprocess.TimeoutExpired:
            serve.kill()  # its decode thread is parked inside llama.cpp for good: SIGTERM must still end it
            pytest.fail("the server did not stop on SIGTERM after losing a worker")


def test_run_ends_with_the_reason_when_a_worker_is_lost(
    gguf: Path, workers: list[tuple[subprocess.Popen[str], str]], tmp_path: Path
) -> None:
    """`edgeoss run` decodes in its own main thread, which llama.cpp cannot give back: the
    process ends at once with the reason and WorkerError's exit code, not an abort's core dump."""
    endpoints = ",".join(endpoint for _, endpoint in workers)
    run = subprocess.Popen(
        [sys.executable, "-m", "edgeoss", "run", str(gguf), "hi", "--max-tokens", "100000", "--workers", endpoints],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=user_env(EDGEOSS_HOME=str(tmp_path / "home"), EDGEOSS_LOCAL_MEMORY=LOCAL_MEMORY_GIB, EDGEOSS_THREADS="1"),
    )
    worker, endpoint = workers[0]
    said: list[str] = []
    assert worker.stdout is not None
    reader = threading.Thread(target=lambda: said.extend(iter(worker.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    deadline = time.monotonic() + 120
    while not any("connected: 127.0.0.1" in line for line in said):
        assert time.monotonic() < deadline and run.poll() is None, "the main never reached the worker"
        time.sleep(0.1)
    time.sleep(5)  # loading, or decoding: either way the process must end with the reason
    worker.kill()
    try:
        _, stderr = run.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        run.kill()
        pytest.fail("edgeoss run hung after losing a worker")
    assert run.returncode == WorkerError.exit_code, stderr[-2000:]
    assert "was lost" in stderr and "start the worker again (edgeoss worker)" in stderr, stderr[-2000:]
    assert "mid-run" not in stderr or endpoint in stderr


def test_a_worker_of_another_version_is_refused_with_the_fix(gguf: Path, tmp_path: Path) -> None:
    older = RpcServerDouble(version=(6, 1, 0))
    try:
        done = subprocess.run(
            [sys.executable, "-m", "edgeoss", "run", str(gguf), "hi", "--max-tokens", "2", "--workers", older.endpoint],
            capture_output=True,
            text=True,
            env=user_env(EDGEOSS_HOME=str(tmp_path / "home")),
            timeout=300,
        )
    finally:
        older.close()
    assert done.returncode == WorkerError.exit_code, done.stderr[-2000:]
    assert "speaks llama.cpp RPC protocol 6.1.0" in done.stderr and "must match exactly" in done.stderr
    assert "same edgeoss and llama-cpp-python version on both machines" in done.stderr
    assert older.allocations == []  # refused before llama.cpp connected


def test_a_worker_that_refuses_this_address_is_reported_with_the_fix(tmp_path: Path) -> None:
    _rpc_or_fail()
    proc, endpoint = start_worker(tmp_path / "worker", "--allow", "127.0.0.5")
    try:
        done = subprocess.run(
            [sys.executable, "-m", "edgeoss", "doctor", "--json", "--workers", endpoint],
            capture_output=True,
            text=True,
            env=user_env(EDGEOSS_HOME=str(tmp_path / "home"), EDGEOSS_MEMORY_BANDWIDTH="20"),
            timeout=300,
        )
    finally:
        said = stop(proc)
    assert done.returncode in (0, 1), done.stderr[-2000:]  # doctor --json reports; its checks say what failed
    report = json.loads(done.stdout)
    (state,) = report["workers"]
    assert state["state"] == "unusable" and "closed the connection" in state["error"]
    assert "--allow ADDRESS-OF-THIS-MACHINE" in state["fix"]
    check = next(c for c in report["checks"] if c["label"] == endpoint)
    assert check["status"] == "fail" and "--allow" in check["fix"]
    assert "refused 127.0.0.1: not in --allow (add --allow 127.0.0.1 if it is yours)" in said


def test_plan_with_workers_shows_each_worker_and_the_pool(
    workers: list[tuple[subprocess.Popen[str], str]], tmp_path: Path
) -> None:
    endpoints = [endpoint for _, endpoint in workers]
    done = subprocess.run(
        [sys.executable, "-m", "edgeoss", "plan", "--json", "--workers", ",".join(endpoints)],
        capture_output=True,
        text=True,
        env=user_env(EDGEOSS_HOME=str(tmp_path / "home"), EDGEOSS_MEMORY_BANDWIDTH="20"),
        timeout=300,
    )
    data = json.loads(done.stdout)
    assert [w["endpoint"] for w in data["workers"]] == endpoints
    for worker in data["workers"]:
        assert worker["state"] == "ready" and worker["profile"]["protocol"] == [7, 0, 0]
        (device,) = worker["profile"]["devices"]
        assert device["total_bytes"] == 300 << 20  # the --mem offer, not the machine's RAM
    pooled = data["pooled_plan"]
    assert pooled["variant"] in ("gpt-oss-120b", "gpt-oss-20b") and pooled["reasons"]
    # 300 MB workers cannot carry a real gpt-oss: whatever fits, fits on this machine alone.
    assert done.returncode == (0 if pooled["fits"] else 1)
    if pooled["fits"]:
        assert "the workers are not needed" in pooled["reasons"][0]


def test_settings_keep_the_plan_when_the_workers_are_not_needed(
    gguf: Path, workers: list[tuple[subprocess.Popen[str], str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from edgeoss.engines.base import LoadSettings
    from edgeoss.runtime import pooled

    monkeypatch.delenv("EDGEOSS_LOCAL_MEMORY", raising=False)
    base = replace(LoadSettings(context_length=1024), threads=1)  # a 2.7 GB model: this machine holds it
    assert pooled.settings_for(base, gguf, [e for _, e in workers], 1024) == base
