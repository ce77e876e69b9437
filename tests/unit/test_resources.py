"""Package data and the offline harmony encoding."""

from __future__ import annotations

import importlib
import os
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from edgeoss import constants, harmony, resources, spec
from edgeoss.errors import DataIntegrityError


def test_packaged_files_verify() -> None:
    assert resources.vocab_path().stat().st_size > 3_000_000
    template = resources.chat_template()
    assert "<|start|>" in template and "reasoning_effort" in template


def test_damaged_vocab_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "data"
    fake.mkdir()
    original = resources.data_dir() / resources.VOCAB_FILE
    damaged = bytearray(original.read_bytes())
    damaged[1000] ^= 0x01
    (fake / resources.VOCAB_FILE).write_bytes(bytes(damaged))
    monkeypatch.setattr(resources, "data_dir", lambda: fake)
    resources.vocab_path.cache_clear()
    try:
        with pytest.raises(DataIntegrityError, match="damaged"):
            resources.vocab_path()
    finally:
        resources.vocab_path.cache_clear()


def test_missing_template_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resources, "data_dir", lambda: tmp_path)
    resources.chat_template.cache_clear()
    try:
        with pytest.raises(DataIntegrityError, match="missing"):
            resources.chat_template()
    finally:
        resources.chat_template.cache_clear()


class _NetworkUsed(AssertionError):
    pass


def test_encoding_loads_in_process_with_python_sockets_blocked(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise _NetworkUsed(f"network connection attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.delenv(constants.ENV_TIKTOKEN_ENCODINGS_BASE, raising=False)
    importlib.import_module("edgeoss.harmony.encoding")._load.cache_clear()  # the function shadows the module
    enc = harmony.encoding()
    assert enc.encode("<|start|>user<|message|>", allowed_special="all") == [spec.START, 1428, spec.MESSAGE]
    # The variable was set only for the load.
    assert constants.ENV_TIKTOKEN_ENCODINGS_BASE not in os.environ


_CHILD = textwrap.dedent(
    """
    import socket, sys
    def refuse(*a, **k):
        raise SystemExit("network connection attempted")
    socket.socket.connect = refuse
    socket.create_connection = refuse
    from edgeoss import harmony
    enc = harmony.encoding()
    ids = enc.encode("<|start|>assistant<|channel|>final<|message|>hi<|return|>", allowed_special="all")
    print(ids)
    """
)


def test_encoding_loads_in_a_process_without_any_network(tmp_path: Path) -> None:
    """The Rust core of openai-harmony does its own networking, which a Python
    socket guard cannot see: run the load where there is no network at all
    (a fresh network namespace), with an empty tiktoken cache and proxies that
    lead nowhere, so only the packaged file can make it work."""
    env = {k: v for k, v in os.environ.items() if k != constants.ENV_TIKTOKEN_ENCODINGS_BASE}
    env.update(
        TIKTOKEN_RS_CACHE_DIR=str(tmp_path / "tiktoken-cache"),
        TIKTOKEN_CACHE_DIR=str(tmp_path / "tiktoken-cache"),
        HTTPS_PROXY="http://127.0.0.1:9",
        HTTP_PROXY="http://127.0.0.1:9",
        ALL_PROXY="http://127.0.0.1:9",
    )
    command = [sys.executable, "-c", _CHILD]
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-rn", "true"], capture_output=True).returncode == 0:
        command = [unshare, "-rn", *command]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str([spec.START, 173781, spec.CHANNEL, 17196, spec.MESSAGE, 3686, spec.RETURN])
    assert not any((tmp_path / "tiktoken-cache").glob("*")), "nothing may be downloaded into the cache"
