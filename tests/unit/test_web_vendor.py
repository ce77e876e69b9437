"""The web chat's third-party scripts are what build/vendor_web.sh took from the
npm registry: each vendored file matches the sha256 SOURCES.json records, each
has its license beside it, and the page loads nothing from elsewhere."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

WEB = Path(__file__).resolve().parents[2] / "edgeoss" / "server" / "web"


def test_each_vendored_file_is_the_recorded_one_with_its_license() -> None:
    sources = json.loads((WEB / "vendor" / "SOURCES.json").read_text())
    assert {s["package"].split("@")[0] for s in sources} == {"marked", "dompurify"}
    for source in sources:
        path = WEB / "vendor" / source["vendored"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == source["sha256"], path
        assert source["npm_integrity"].startswith("sha512-")
        license_file = WEB / "vendor" / (source["vendored"].split(".")[0] + ".LICENSE")
        assert "License" in license_file.read_text()


def test_the_page_loads_only_its_own_files() -> None:
    page = (WEB / "index.html").read_text()
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sources and all(s.startswith("/static/") for s in sources), sources
    for src in sources:
        assert (WEB / src.removeprefix("/static/")).is_file(), src
