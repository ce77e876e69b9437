"""The tools edgeoss runs for the model: the tool loop (loop.py), the OS
sandbox (sandbox.py), the built-in python tool (python_tool.py, with
python_worker.py inside the sandbox) and browser (browser.py over web.py and
page_text.py). All of them are off until the user turns them on."""

from __future__ import annotations

from dataclasses import dataclass

TOOL_NAMES = ("python", "browser")
"""The tools edgeoss can run for the model: what `--tools` and the tray's menu take."""

PYTHON_TIMEOUT_S = 120.0
"""One python call's wall-clock limit: the figure gpt-oss's own tool description states."""


@dataclass(frozen=True)
class ToolSettings:
    """How the tools that are on behave (serve's, run's and chat's options)."""

    python_timeout_s: float = PYTHON_TIMEOUT_S
    browser_search: str = ""  # a SearXNG URL, "ddgs", or "" (no search; open by URL still works)
    browser_allow_private: bool = False  # pages on loopback and private addresses too (never link-local)
