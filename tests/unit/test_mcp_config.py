"""The mcpServers file: what it may hold, and a usage error naming what is wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgeoss import errors
from edgeoss.tools import mcp_tools


def write(tmp_path: Path, servers: object) -> Path:
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({"mcpServers": servers}))
    return path


def test_stdio_and_http_servers_with_an_allowlist(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {
            "files-server": {"command": "npx", "args": ["-y", "server"], "env": {"A": "1"}, "tools": ["read"]},
            "web": {"type": "http", "url": "https://example.org/mcp", "headers": {"Authorization": "Bearer x"}},
            "off": {"command": "x", "disabled": True},
        },
    )
    stdio, http = mcp_tools.load(path)
    assert (stdio.name, stdio.command, stdio.args, stdio.env, stdio.allow) == (
        "files_server", "npx", ("-y", "server"), {"A": "1"}, ("read",),
    )  # fmt: skip
    assert (http.name, http.url, http.headers, http.allow) == (
        "web",
        "https://example.org/mcp",
        {"Authorization": "Bearer x"},
        None,
    )


@pytest.mark.parametrize(
    ("servers", "fragment"),
    [
        ({"python": {"command": "x"}}, "cannot name a tool namespace"),
        ({"functions": {"command": "x"}}, "cannot name a tool namespace"),
        ({"a": {"url": "ftp://x"}}, "needs a command"),
        ({"a": {}}, "needs a command"),
        ({"a": {"type": "sse", "url": "http://x/sse"}}, "SSE transport is not supported"),
        ({"a": {"command": "x", "args": "not a list"}}, "must be a list of strings"),
        ({"a": {"command": "x", "env": {"A": 1}}}, "must be an object of strings"),
        ({"a-b": {"command": "x"}, "a_b": {"command": "y"}}, "both 'a_b'"),
        ({"a": "x"}, "must be an object"),
    ],
)
def test_a_bad_entry_is_a_usage_error(tmp_path: Path, servers: object, fragment: str) -> None:
    with pytest.raises(errors.UsageError, match=fragment):
        mcp_tools.load(write(tmp_path, servers))


def test_a_file_that_is_not_a_configuration(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text("[1]")
    with pytest.raises(errors.UsageError, match="no mcpServers"):
        mcp_tools.load(path)
    with pytest.raises(errors.UsageError, match="cannot read"):
        mcp_tools.load(tmp_path / "missing.json")
