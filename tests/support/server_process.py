"""Start the scripted test server (tests/support/scripted_server.py) in its own process."""

from __future__ import annotations

import base64
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).parent
HELLO = [{"role": "user", "content": "Hi"}]
"""The one-message chat the server tests send."""


# Variables by which tools tell a CI machine (onnxruntime's telemetry stays off under CI=true,
# for one): tests that check what a user's machine would see run without them.
CI_VARIABLES = ("CI", "GITHUB_ACTIONS", "TF_BUILD", "BUILD_BUILDID", "GITLAB_CI", "JENKINS_URL", "BUILDKITE")


def user_env(**extra: str) -> dict[str, str]:
    """This process's environment as a user's shell would have it, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in CI_VARIABLES}
    return {**env, **extra}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def script_header(text: str) -> dict[str, str]:
    return {"X-Test-Script": base64.b64encode(text.encode()).decode()}


def wait_ready(url: str, proc: subprocess.Popen[Any], seconds: float) -> None:
    """Until `url`/health says ready; fails with the process's stderr if it exits first."""
    deadline = time.monotonic() + seconds
    while True:
        if proc.poll() is not None:
            _, stderr = proc.communicate()
            text = stderr.decode(errors="replace") if isinstance(stderr, bytes) else str(stderr)
            raise AssertionError(f"the server exited with {proc.returncode}: {text[-2000:]}")
        try:
            if httpx.get(url + "/health", timeout=2).json()["status"] == "ready":
                return
        except (httpx.HTTPError, ValueError, KeyError):
            pass
        assert time.monotonic() < deadline, f"the server was not ready within {seconds:.0f} s"
        time.sleep(0.2)


@contextlib.contextmanager
def running_server(model: Path, *args: str, log: Path | None = None, ready: bool = True) -> Iterator[str]:
    """The base URL of a server on `model`; waits until /health says ready."""
    port = free_port()
    out = open(log, "w") if log else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "scripted_server.py"), str(model), str(port), *args],
        stdout=out,
        stderr=out,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the server exited with {proc.returncode}" + (f"; see {log}" if log else ""))
            try:
                status = httpx.get(url + "/health", timeout=2).json()["status"]
                if status == "ready" or (not ready and status):
                    break
            except (httpx.HTTPError, ValueError, KeyError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not become ready in 120 s")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if log:
            out.close()  # type: ignore[union-attr]


@contextlib.contextmanager
def on_each_engine(request: Any, tmp_path_factory: Any, *extra: str) -> Iterator[str]:
    """The scripted server on the engine a fixture's param names: batched llama.cpp (2
    sequences of 2048 tokens) or onnxruntime-genai (one sequence of 2048); `extra` args."""
    import pytest

    log = tmp_path_factory.mktemp("server") / "server.log"
    if request.param == "ort":
        pytest.importorskip("onnxruntime_genai")
        model, args = request.getfixturevalue("tiny_onnx"), ["--backend", "ort", "--ctx", "2048"]
    else:
        model, args = request.getfixturevalue("tiny_gguf"), ["--parallel", "2", "--ctx", "4096"]
    with running_server(model, *args, *extra, log=log) as url:
        yield url
