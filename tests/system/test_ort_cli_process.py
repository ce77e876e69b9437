"""onnxruntime-genai through `edgeoss serve --backend ort` as a process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from edgeoss.weights import importer
from server_process import HELLO, free_port, wait_ready


def test_serve_backend_ort_answers_chat_completions(tiny_onnx: Path, edgeoss_home: Path) -> None:
    openai = pytest.importorskip("openai")
    importer.import_path(tiny_onnx, name="tiny-onnx")
    port = free_port()
    command = ["serve", "tiny-onnx", "--backend", "ort", "--port", str(port), "--parallel", "4", "--ctx", "2048"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgeoss", *command],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "EDGEOSS_HOME": str(edgeoss_home)},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc, 120)
        health = httpx.get(url + "/health").json()
        assert health["backend"] == "onnxruntime-genai, cpu" and health["parallel"] == 1
        client = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0)
        reply = client.chat.completions.create(model="tiny-onnx", messages=HELLO, max_tokens=5)
        assert reply.usage is not None and reply.usage.completion_tokens == 5
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=30)
    assert "tiny-onnx (onnxruntime-genai)" in stderr
    assert "--parallel 4 becomes 1" in stderr
