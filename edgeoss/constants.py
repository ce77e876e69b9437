"""Every environment variable edgeoss reads, and the defaults behind them."""

from __future__ import annotations

import os

APP_NAME = "edgeoss"

ENV_HOME = "EDGEOSS_HOME"
"""When set, config, cache, data and logs all live under this one folder."""

ENV_LOG_LEVEL = "EDGEOSS_LOG_LEVEL"
"""Level of the rotating log file (DEBUG, INFO, ...); INFO by default."""

ENV_API_KEY = "EDGEOSS_API_KEY"
"""`edgeoss serve --api-key`'s value, kept out of the process list."""

ENV_BROWSER_SEARCH = "EDGEOSS_BROWSER_SEARCH"
"""The browser tool's search: a SearXNG URL, or ddgs (`--browser-search`)."""

ENV_RESPONSES_TTL = "EDGEOSS_RESPONSES_TTL"
"""How long a stored Responses API response is kept, in seconds (30 days by default)."""
RESPONSES_TTL_S = 30 * 24 * 3600.0

ENV_THREADS = "EDGEOSS_THREADS"
"""llama.cpp's decode threads; unset, edgeoss times the candidates on the first
load of a model and remembers the fastest (engines/llamacpp/threads.py)."""

ENV_MEMORY_BANDWIDTH = "EDGEOSS_MEMORY_BANDWIDTH"
"""This machine's memory read bandwidth in GB/s (10^9 bytes a second): doctor
and plan take it instead of measuring (discover/bandwidth.py), e.g. to state a
known figure or to keep the measurement out of tests."""

ENV_LOCAL_MEMORY = "EDGEOSS_LOCAL_MEMORY"
"""With --workers: the most of this machine's RAM a model may take, in GiB (e.g. 3.5);
the layers that do not fit go to the workers. Unset: what is available now."""

# Set by edgeoss for a child process it starts (the tray's server), never by a user:
# the read end of a pipe whose other end the parent holds (POSIX), and the parent's pid.
# The child stops when the pipe reaches end-of-file or the parent is gone (lifeline.py).
ENV_PARENT_PIPE = "EDGEOSS_PARENT_PIPE"
ENV_PARENT_PID = "EDGEOSS_PARENT_PID"

# Read by openai-harmony (its Rust core) to find o200k_base.tiktoken locally.
ENV_TIKTOKEN_ENCODINGS_BASE = "TIKTOKEN_ENCODINGS_BASE"

# Read by huggingface_hub (at import) and honoured by `edgeoss pull`:
ENV_HF_HUB_OFFLINE = "HF_HUB_OFFLINE"
"""1: never contact the Hub; pull says so and points at `edgeoss import`."""
ENV_HF_ENDPOINT = "HF_ENDPOINT"
"""Another Hub (a mirror, or the tests' local imitation)."""
ENV_HF_TOKEN = "HF_TOKEN"
"""A Hub token, for gated or private repositories."""

# Read by onnxruntime and onnxruntime-genai when they load; edgeoss sets it to 1
# unless it is set (edgeoss/engines/ort_binding.py says why).
ENV_ORT_DISABLE_TELEMETRY = "ORT_DISABLE_TELEMETRY"

DEFAULT_PORT = 8734
WORKER_PORT = 50052  # `edgeoss worker`'s default: llama.cpp rpc-server's own
"""edgeoss serve's port: clear of Ollama (11434), llama-server (8080), LM Studio
(1234), vLLM (8000) and Open WebUI (3000, 8080)."""

LOG_FILE_BYTES = 5 * 1024 * 1024
LOG_FILE_BACKUPS = 3


def home_override() -> str | None:
    value = os.environ.get(ENV_HOME, "").strip()
    return value or None


def log_level() -> str:
    return os.environ.get(ENV_LOG_LEVEL, "INFO").strip().upper() or "INFO"


def responses_ttl_s() -> float:
    """EDGEOSS_RESPONSES_TTL when it is a positive number of seconds, else 30 days."""
    try:
        value = float(os.environ.get(ENV_RESPONSES_TTL, ""))
    except ValueError:
        return RESPONSES_TTL_S
    return value if 0 < value < 1e10 else RESPONSES_TTL_S


def threads() -> int | None:
    """EDGEOSS_THREADS when it is a whole number from 1 to 1024, else None."""
    value = os.environ.get(ENV_THREADS, "").strip()
    return int(value) if value.isdigit() and 1 <= int(value) <= 1024 else None


def memory_bandwidth() -> float | None:
    """EDGEOSS_MEMORY_BANDWIDTH in bytes a second when it is a number of GB/s
    from 0.1 to 100000, else None."""
    try:
        value = float(os.environ.get(ENV_MEMORY_BANDWIDTH, ""))
    except ValueError:
        return None
    return value * 1e9 if 0.1 <= value <= 100_000 else None


def local_memory() -> int | None:
    """EDGEOSS_LOCAL_MEMORY in bytes when it is a number of GiB from 0.1 to 100000, else None."""
    try:
        value = float(os.environ.get(ENV_LOCAL_MEMORY, ""))
    except ValueError:
        return None
    return int(value * (1 << 30)) if 0.1 <= value <= 100_000 else None
