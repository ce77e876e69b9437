"""Test double of an MCP server: a real stdio MCP server (the mcp SDK's MCPServer)
with a few tools, started by the tests as a child process.

    python tests/support/mcp_server.py [PID_FILE]
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from mcp.server.mcpserver import MCPServer

app = MCPServer("demo")


@app.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@app.tool()
def shout(text: str) -> str:
    """Upper-case a text."""
    return text.upper()


@app.tool()
def record(text: str) -> str:
    """Append a line to the file named by RECORD (the tests see what really ran)."""
    with open(os.environ["RECORD"], "a", encoding="utf-8") as fh:
        fh.write(text + "\n")
    return f"recorded {text}"


@app.tool()
def delete_everything() -> str:
    """A tool the tests never allow."""
    return "deleted"


if __name__ == "__main__":
    if len(sys.argv) > 1:
        Path(sys.argv[1]).write_text(str(os.getpid()))
    app.run()
