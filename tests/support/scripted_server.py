"""Test double: the real edgeoss server (create_app, uvicorn, the engine
edgeoss serve would open: batched llama.cpp, or onnxruntime-genai one
sequence at a time) in a real process, on a synthetic model whose choices
are steered per request by a forced token script.

A request that carries `X-Test-Script: <base64 of harmony text>` gets a
ForcedScript logits processor: llama.cpp still decodes every token, but only
the scripted id can be sampled. Requests without it sample freely.

    python tests/support/scripted_server.py MODEL.gguf|ONNX_DIR PORT [--backend llama.cpp|ort]
        [--parallel N] [--queue N] [--ctx N]
        [--api-key K] [--keep-alive S] [--max-body N] [--timeout S] [--host H] [--cors-origin O] [--log-prompts]
        [--tools python,browser] [--tool-timeout S] [--browser-search URL] [--browser-allow-private] [--mcp FILE]
"""

from __future__ import annotations

import argparse
import base64
import sys
from pathlib import Path

from fastapi import Request

sys.path.insert(0, str(Path(__file__).parent))

from edgeoss import backends, harmony, logs
from edgeoss.engines.base import LoadSettings, LogitsProcessor
from edgeoss.engines.loader import open_server_engine
from edgeoss.server.app import create_app
from edgeoss.server.host import ModelHost, ModelInfo, parse_keep_alive
from edgeoss.server.launch import run_app
from edgeoss.server.options import ServeOptions
from edgeoss.tools import ToolSettings
from forced import ForcedScript


def script_for(request: Request) -> LogitsProcessor | None:
    header = request.headers.get("x-test-script")
    if not header:
        return None
    text = base64.b64decode(header).decode()
    return ForcedScript(harmony.encoding().encode(text, allowed_special="all"))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("model", type=Path)
    p.add_argument("port", type=int)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--backend", default="llama.cpp", choices=["llama.cpp", "ort"])
    p.add_argument("--parallel", type=int, default=2)
    p.add_argument("--queue", type=int, default=8)
    p.add_argument("--ctx", type=int, default=4096)
    p.add_argument("--api-key")
    p.add_argument("--keep-alive", default="5m")
    p.add_argument("--max-body", type=int, default=1024 * 1024)
    p.add_argument("--timeout", type=float, default=60)
    p.add_argument("--cors-origin", action="append", default=[])
    p.add_argument("--name", default="synthetic")
    p.add_argument("--log-prompts", action="store_true")
    p.add_argument("--tools", default="")
    p.add_argument("--tool-timeout", type=float, default=120.0)
    p.add_argument("--browser-search", default="")
    p.add_argument("--browser-allow-private", action="store_true")
    p.add_argument("--mcp", type=Path)
    a = p.parse_args()
    logs.setup(0)
    size = (
        sum(f.stat().st_size for f in a.model.rglob("*") if f.is_file()) if a.model.is_dir() else a.model.stat().st_size
    )
    engine = backends.engine_option(a.backend) or backends.LLAMA_CPP
    info = ModelInfo(a.name, a.model, "gpt-oss-20b", is_demo=True, size_bytes=size, backend=engine.label)
    host = ModelHost(
        info,
        LoadSettings(context_length=a.ctx, use_mmap=False),
        parallel=1 if engine.one_sequence else a.parallel,
        queue_size=a.queue,
        keep_alive_s=parse_keep_alive(a.keep_alive),
        engine_factory=lambda path, s, n: open_server_engine(engine, path, s, n),
    )
    options = ServeOptions(
        host=a.host,
        port=a.port,
        api_key=a.api_key,
        cors_origins=a.cors_origin,
        max_body_bytes=a.max_body,
        request_timeout_s=a.timeout or None,
        log_prompts=a.log_prompts,
        tools=tuple(t for t in a.tools.split(",") if t),
        mcp_config=a.mcp,
        tool_settings=ToolSettings(
            python_timeout_s=a.tool_timeout,
            browser_search=a.browser_search,
            browser_allow_private=a.browser_allow_private,
        ),
    )
    run_app(create_app(host, options, script_for), a.host, a.port)


if __name__ == "__main__":
    main()
