"""`edgeoss serve` in process: its safety refusals, keep-alive parsing, the
server effort (choosing the model to serve: tests/integration/test_serve_choose_model.py;
the server as a process: tests/system/test_serve_cli_process.py)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgeoss.cli import app
from edgeoss.errors import UsageError
from edgeoss.server.host import parse_keep_alive
from server_process import HELLO

runner = CliRunner()


@pytest.mark.parametrize(
    ("text", "seconds"), [("5m", 300.0), ("30s", 30.0), ("1h", 3600.0), ("0", 0.0), ("250ms", 0.25), ("-1", None)]
)
def test_keep_alive_durations(text: str, seconds: float | None) -> None:
    assert parse_keep_alive(text) == seconds


def test_bad_keep_alive_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        parse_keep_alive("forever")


def test_refuses_a_public_address_without_an_api_key() -> None:
    result = runner.invoke(app, ["serve", "demo", "--host", "0.0.0.0"])
    assert result.exit_code == 2
    assert "without an API key" in result.output and "--api-key" in result.output


def test_refuses_a_port_in_use() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        result = runner.invoke(app, ["serve", "demo", "--port", str(port)])
    assert result.exit_code == 2 and f"port {port}" in result.output and "in use" in result.output


def test_the_server_effort_applies_only_where_a_request_names_none() -> None:
    from edgeoss.server.api import ollama, openai_chat
    from edgeoss.server.service import with_effort

    hello = {"messages": HELLO}
    assert openai_chat.effort_of(with_effort(hello, "high")) == "high"
    assert openai_chat.effort_of(with_effort({**hello, "reasoning_effort": "low"}, "high")) == "low"
    assert openai_chat.effort_of(with_effort({"input": "x", "reasoning": {"effort": "low"}}, "high")) == "low"
    assert ollama.think_of(with_effort(hello, "high")) == ("high", True)
    assert ollama.think_of(with_effort({**hello, "think": False}, "high")) == ("low", False)
    bad = runner.invoke(app, ["serve", "demo", "--effort", "max"])
    assert bad.exit_code == 2 and "low, medium or high" in bad.output


def test_placement_options_override_the_plan(tmp_path: Path) -> None:
    """--gpu-layers, --cpu-moe and --threads reach the settings the engine loads with."""
    from edgeoss.engines.base import LoadSettings
    from edgeoss.runtime.choose import Chosen
    from edgeoss.server.launch import ServeRequest, build

    (tmp_path / "m.gguf").write_bytes(b"GGUF")  # never loaded: build() only sets the host up
    chosen = Chosen("m.gguf", tmp_path / "m.gguf", None, LoadSettings(n_gpu_layers=0, n_cpu_moe_layers=0))
    host, _ = build(ServeRequest(model="m.gguf", gpu_layers=999, cpu_moe=3, threads=5), chosen)
    assert (host.settings.n_gpu_layers, host.settings.n_cpu_moe_layers, host.settings.threads) == (999, 3, 5)
    assert "experts of 3 layers on the CPU, 5 CPU threads" in host.info.placement
    host, _ = build(ServeRequest(model="m.gguf"), chosen)
    assert (host.settings.n_gpu_layers, host.settings.n_cpu_moe_layers, host.settings.threads) == (0, 0, None)
    bad = runner.invoke(app, ["serve", "demo", "--threads", "0"])
    assert bad.exit_code == 2
