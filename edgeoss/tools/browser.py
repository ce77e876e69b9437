"""The built-in `browser` tool: search, open and find, as gpt-oss was trained to use them.

Each conversation has a page stack: every display (a search's results, a page,
a scroll, a find) is pushed, and its index is the `cursor` the model cites as
`【{cursor}†L{line}】`. A display is a header (`[cursor] title (url)`, then
`**viewing lines [a - b] of last**`) and numbered lines `L0: ...`, about 1024
tokens of them unless `num_lines` asks otherwise. Links are `【{id}†text】`
markers that `open(id=...)` follows (page_text.py).

Pages come through web.py (never the user's own network, capped, one
deadline); search goes to a SearXNG instance the user names (its JSON API; no
account, no key) or, with the `ddgs` package installed, to its keyless
metasearch. Errors are text for the model, in the words the reference tool
uses, and never end the request.
"""

from __future__ import annotations

import html
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote, urlencode, urlsplit

from edgeoss import harmony
from edgeoss.harmony.encoding import encoding
from edgeoss.tools import page_text, web
from edgeoss.tools.conversations import PerConversation
from edgeoss.tools.page_text import PageText

log = logging.getLogger(__name__)

VIEW_TOKENS = 1024  # what a display shows when num_lines is not given
VIEW_CHARS = 1024  # below this many characters, the rest of the page is shown whole
MAX_PAGES = 64  # pages one conversation's stack may hold
MAX_RESULTS = 20
FIND_CONTEXT = 4  # lines shown from each match
MAX_FINDS = 50


class BrowserError(Exception):
    """A call the tool cannot do; its message is what the model reads."""


@dataclass(frozen=True)
class Result:
    title: str
    url: str
    snippet: str


class Search(Protocol):
    name: str

    def search(self, query: str, count: int) -> list[Result]: ...


class Searxng:
    """A SearXNG instance's JSON API (`/search?q=...&format=json`), at the URL the user gave.
    That one host may be on the user's own network (a SearXNG at home); pages never may."""

    name = "searxng"

    def __init__(self, base_url: str, policy: web.Policy) -> None:
        self.base_url = web.check_url(base_url.rstrip("/"))
        self.policy = policy

    def search(self, query: str, count: int) -> list[Result]:
        url = f"{self.base_url}/search?{urlencode({'q': query, 'format': 'json'})}"
        trusted = web.Policy(allow_private=True, max_bytes=self.policy.max_bytes, timeout_s=self.policy.timeout_s)
        page = web.fetch(url, trusted)
        try:
            data = json.loads(page.text)
        except ValueError:
            raise web.FetchError(f"{self.base_url} did not answer with JSON (is its format=json enabled?)") from None
        results = data.get("results") if isinstance(data, dict) else None
        if not isinstance(results, list):
            raise web.FetchError(f"{self.base_url} answered without results")
        out = []
        for item in results:
            if isinstance(item, dict) and isinstance(item.get("url"), str):
                out.append(Result(str(item.get("title") or item["url"]), item["url"], str(item.get("content") or "")))
        return out[:count]


class Ddgs:
    """The `ddgs` package's keyless metasearch (optional: pip install ddgs)."""

    name = "ddgs"

    def search(self, query: str, count: int) -> list[Result]:
        try:
            from ddgs import DDGS  # type: ignore[import-not-found]
        except ImportError:
            raise web.FetchError("the ddgs search package is not installed (pip install ddgs)") from None
        try:
            found = DDGS().text(query, max_results=count)
        except Exception as exc:  # ddgs raises its own types for every network failure
            raise web.FetchError(f"ddgs: {exc} (offline?)") from None
        return [Result(str(r.get("title", "")), str(r.get("href", "")), str(r.get("body", ""))) for r in found]


def search_backend(spec: str, policy: web.Policy) -> Search | None:
    """`--browser-search`: a SearXNG URL, `ddgs`, or empty (no search; open still works)."""
    if not spec:
        return None
    if spec == "ddgs":
        return Ddgs()
    return Searxng(spec, policy)


@dataclass
class _Shown:
    page: PageText
    kind: str  # "page", "search", "find"
    matches: tuple[int, ...] = ()  # find: the line of each match on the page it searched


class BrowserSession:
    """One conversation's browser: its page stack and its cache of fetched pages."""

    def __init__(self, search: Search | None, policy: web.Policy, fetch: Callable[..., web.Page] = web.fetch) -> None:
        self.backend, self.policy, self._fetch = search, policy, fetch
        self.stack: list[_Shown] = []
        self.cache: dict[str, PageText] = {}

    def close(self) -> None:
        self.stack.clear()
        self.cache.clear()

    # --- the model's calls -----------------------------------------------------------------------

    def call(self, function: str, arguments: str) -> str:
        """`browser.{function}` with the model's JSON arguments: the display, or the error, as text."""
        try:
            args = json.loads(arguments) if arguments.strip() else {}
        except ValueError:
            return json.dumps({"error": "Invalid function arguments"})
        if not isinstance(args, dict):
            return json.dumps({"error": "Invalid function arguments"})
        try:
            if function == "search":
                return self.search(str(args.get("query", "")))
            if function == "open":
                return self.open(
                    args.get("id", -1),
                    _integer(args.get("cursor", -1), "cursor"),
                    _integer(args.get("loc", -1), "loc"),
                    _integer(args.get("num_lines", -1), "num_lines"),
                    bool(args.get("view_source", False)),
                )
            if function == "find":
                return self.find(str(args.get("pattern", "")), _integer(args.get("cursor", -1), "cursor"))
            return json.dumps({"error": f"Unknown function: {function}"})
        except BrowserError as exc:
            return str(exc)

    def search(self, query: str) -> str:
        if not query.strip():
            raise BrowserError("Error during search for ``: the query is empty")
        if self.backend is None:
            raise BrowserError(
                f"Error during search for `{query}`: no search is set up on this computer "
                "(edgeoss serve --browser-search SEARXNG_URL, or ddgs); pages can still be opened by URL"
            )
        try:
            results = self.backend.search(query, MAX_RESULTS)
        except web.FetchError as exc:
            raise BrowserError(f"Error during search for `{query}`: {str(exc)[:1024]}") from None
        items = "".join(
            f'<li><a href="{html.escape(r.url, quote=True)}">{html.escape(r.title)}</a> {html.escape(r.snippet)}</li>'
            for r in results
        )
        page = page_text.from_html(f"<h1>Search Results</h1><ul>{items}</ul>", "", query)
        page.title = query
        return self._push(_Shown(page, "search"), 0, -1)

    def open(self, link: Any, cursor: int, loc: int, num_lines: int, view_source: bool = False) -> str:
        if isinstance(link, str):
            url = link.removeprefix("view-source:")
            page = self._load(url, fresh=True, source=view_source)
            return self._push(_Shown(page, "page"), loc, num_lines)
        link_id = _integer(link, "id")
        shown = self._at(cursor)
        if link_id < 0:  # no id: scroll the page at cursor
            return self._push(_Shown(shown.page, shown.kind), loc, num_lines)
        target = shown.page.links.get(link_id)
        if target is None:
            raise BrowserError(f"Invalid link id `{link_id}`.")
        if shown.kind == "find" and target in self.cache:  # a match: back to the page, a little above the match
            line = shown.matches[link_id]
            at = loc if loc >= 0 else (line - FIND_CONTEXT if line > FIND_CONTEXT else line)
            return self._push(_Shown(self.cache[target], "page"), at, num_lines)
        return self._push(_Shown(self._load(target, fresh=False, source=view_source), "page"), loc, num_lines)

    def find(self, pattern: str, cursor: int) -> str:
        shown = self._at(cursor)
        if shown.kind == "find":
            raise BrowserError("Cannot run `find` on search results page or find results page")
        if not pattern:
            raise BrowserError("`pattern` is empty")
        lines = [_unlinked(line) for line in shown.page.lines]
        wanted = pattern.lower()
        blocks: list[str] = []
        matches: list[int] = []
        i = 0
        while i < len(lines) and len(matches) < MAX_FINDS:
            if wanted in lines[i].lower():
                matches.append(i)
                body = "\n".join(lines[i : i + FIND_CONTEXT])
                blocks.append(f"# 【{len(matches) - 1}†match at L{i}】\n{body}")
                i += FIND_CONTEXT
            else:
                i += 1
        url = f"{shown.page.url}/find?pattern={quote(pattern)}"
        title = f"Find results for text: `{pattern}` in `{shown.page.title}`"
        text = "\n\n".join(blocks) if blocks else f"No `find` results for pattern: `{pattern}`"
        found = PageText(url, title, page_text.wrap(text), {k: shown.page.url for k in range(len(matches))})
        self.cache.setdefault(shown.page.url, shown.page)
        return self._push(_Shown(found, "find", tuple(matches)), 0, -1)

    def source(self, cursor: int, line: int | None) -> harmony.Source | None:
        """The web page a citation `【cursor†Lline】` points to: the page at that cursor; on a
        search or find page, the result or page at that line. None when there is no web
        address to give (the citation then stays as the model wrote it)."""
        if not 0 <= cursor < len(self.stack):
            return None
        shown = self.stack[cursor]
        page, url, title = shown.page, shown.page.url, shown.page.title
        if shown.kind in ("search", "find"):
            ids = _link_ids(page.lines[line]) if line is not None and 0 <= line < len(page.lines) else []
            if shown.kind == "find" and not ids:
                ids = list(page.links)[:1]  # every match is on the one page it searched
            target = next((page.links[i] for i in ids if i in page.links), None)
            if target is None:
                return None
            url = target
            cached = self.cache.get(target)
            title = cached.title if cached is not None else _link_text(page.lines[line or 0], target, page)
        if urlsplit(url).scheme not in ("http", "https"):
            return None
        return harmony.Source(url, title)

    # --- the stack -------------------------------------------------------------------------------

    def _at(self, cursor: int) -> _Shown:
        if not self.stack:
            raise BrowserError("No pages to access!")
        if cursor == -1:
            return self.stack[-1]
        if not 0 <= cursor < len(self.stack):
            raise BrowserError(
                f"Cursor `{cursor}` is out of range. Available cursor indices: [0 - {len(self.stack) - 1}]."
            )
        return self.stack[cursor]

    def _push(self, shown: _Shown, loc: int, num_lines: int) -> str:
        if len(self.stack) >= MAX_PAGES:
            raise BrowserError(
                f"This conversation's browser holds {MAX_PAGES} pages, its most; answer with what you have"
            )
        cursor = len(self.stack)
        text = display(shown.page, cursor, loc, num_lines)  # raises before the push on a bad loc
        self.stack.append(shown)
        return text

    def _load(self, url: str, fresh: bool, source: bool = False) -> PageText:
        if not fresh and url in self.cache:
            return self.cache[url]
        try:
            fetched = self._fetch(url, self.policy)
        except web.FetchError as exc:
            raise BrowserError(f"Error fetching URL `{url}`: {str(exc)[:1024]}") from None
        kind = fetched.content_type.split(";")[0].strip().lower()
        if source or kind not in ("text/html", "application/xhtml+xml"):
            page = page_text.from_text(fetched.text, fetched.url, "")
        else:
            page = page_text.from_html(fetched.text, fetched.url)
        if fetched.truncated:
            page.lines += ["", f"[the page was cut at {self.policy.max_bytes >> 20} MB]"]
        self.cache[url] = self.cache[fetched.url] = page
        return page


def display(page: PageText, cursor: int, loc: int, num_lines: int) -> str:
    """The page as the model reads it: header, scrollbar, numbered lines from `loc`."""
    last = len(page.lines) - 1
    if loc > last:
        raise BrowserError(f"Invalid location parameter: `{loc}`. Cannot exceed page maximum of {last}.")
    start = max(loc, 0)
    numbered = [f"L{i}: {page.lines[i]}" for i in range(start, last + 1)]
    if num_lines > 0:
        shown = numbered[:num_lines]
    elif sum(len(n) + 1 for n in numbered) <= VIEW_CHARS:
        shown = numbered
    else:
        shown, tokens = [], 0
        for line in numbered:
            shown.append(line)
            tokens += len(encoding().encode(line + "\n", disallowed_special=()))
            if tokens >= VIEW_TOKENS:
                break
    end = start + len(shown) - 1
    url = page.url if len(page.url) <= 1024 else page.url[:1021] + "..."
    header = f"[{cursor}] {page.title}" + (f" ({url})" if url else "")
    return f"{header}\n**viewing lines [{start} - {end}] of {last}**\n\n" + "\n".join(shown)


def _integer(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BrowserError(f"`{name}` should be an integer, not `{type(value).__name__}`")
    return value


LINK_MARK = re.compile(r"【(\d+)†([^†】]*)(?:†[^】]*)?】")


def _link_ids(line: str) -> list[int]:
    return [int(m.group(1)) for m in LINK_MARK.finditer(line)]


def _link_text(line: str, url: str, page: PageText) -> str:
    """The text of the link to `url` on `line` (a search result's title), else the URL."""
    for m in LINK_MARK.finditer(line):
        if page.links.get(int(m.group(1))) == url and m.group(2).strip():
            return m.group(2).strip()
    return url


def _unlinked(line: str) -> str:
    """A line with its link markers reduced to their text (what find matches against)."""
    out, rest = [], line
    while "【" in rest and "】" in rest.split("【", 1)[1]:
        before, after = rest.split("【", 1)
        inside, rest = after.split("】", 1)
        parts = inside.split("†")
        out.append(before + (parts[1] if len(parts) > 1 else inside))
    return "".join(out) + rest


class Browsers(PerConversation[BrowserSession]):
    """One browser per conversation."""

    def __init__(self, search: Search | None, policy: web.Policy, max_live: int = 8, idle_s: float = 1800) -> None:
        super().__init__(lambda: BrowserSession(search, policy), max_live, idle_s)
