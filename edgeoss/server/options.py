"""How the server runs: address, key, limits, defaults (from `edgeoss serve`'s options)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edgeoss import constants
from edgeoss.tools import ToolSettings


@dataclass
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = constants.DEFAULT_PORT
    api_key: str | None = None
    cors_origins: list[str] = field(default_factory=list)
    max_body_bytes: int = 8 * 1024 * 1024
    request_timeout_s: float | None = 600.0
    log_prompts: bool = False
    max_tokens: int = 32768  # default completion budget when a request names none (capped by the context)
    effort: str = "medium"  # reasoning effort when a request names none (serve --effort, the tray's setting)
    tools: tuple[str, ...] = ()  # the tools edgeoss runs for the model (serve --tools): none unless turned on
    tool_settings: ToolSettings = field(default_factory=ToolSettings)  # --tool-timeout, --browser-*
    mcp_config: Path | None = None  # serve --mcp FILE: the MCP servers whose tools the model may use
