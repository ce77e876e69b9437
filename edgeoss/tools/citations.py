"""The browser's citations, made into links. gpt-oss cites what it read as
`【{cursor}†L{first}-L{last}】`: the cursor of a page in its browser's stack
and the lines it used. A reader cannot follow that, so edgeoss puts the
page's link in its place, `([domain](url))`, as OpenAI's web search writes
it, and each API may say where the link stands (Responses' url_citation
annotations). A mark edgeoss cannot resolve (no such page, a page with no
web address) stays as the model wrote it: nothing is invented.

The answer arrives in pieces, and a mark can be split across them, so the
text from an opening `【` is held until its `】` (or until it is clearly not a
mark: longer than any mark, or the end of the answer)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

from edgeoss import harmony

MAX_MARK = 48
"""The longest citation mark held back waiting for its end (`【123†L1000-L1200】` is 17)."""

MARK = re.compile(r"【(\d{1,4})†(?:L(\d{1,6})(?:-L\d{1,6})?)?[^【】]{0,24}】")

Lookup = Callable[[int, int | None], harmony.Source | None]
"""(cursor, first line cited or None) -> the page cited, if edgeoss knows it."""


def link(source: harmony.Source) -> str:
    return f"([{urlsplit(source.url).netloc}]({source.url}))"


class Citations:
    """Rewrites one answer's citation marks as it streams; `text` is the answer so far."""

    def __init__(self, lookup: Lookup) -> None:
        self.lookup = lookup
        self.text = ""
        self.found: list[tuple[int, int, harmony.Source]] = []  # (start, end) in text, and the page
        self._held = ""

    def feed(self, piece: str) -> Iterator[harmony.Event]:
        """The content events for `piece`: plain text, and a citation event per resolved mark."""
        self._held += piece
        while self._held:
            start = self._held.find("【")
            if start < 0:
                yield from self._plain(self._held)
                self._held = ""
                return
            if start:
                yield from self._plain(self._held[:start])
                self._held = self._held[start:]
            end = self._held.find("】", 1)
            reopened = self._held.find("【", 1)
            if reopened > 0 and (end < 0 or reopened < end):
                # A mark holds no 【: this one is text, and a mark may start at the next.
                yield from self._plain(self._held[:reopened])
                self._held = self._held[reopened:]
                continue
            if end < 0:
                if len(self._held) < MAX_MARK:
                    return  # perhaps a mark still arriving
                yield from self._plain(self._held[:1])  # not a mark: the bracket is text
                self._held = self._held[1:]
                continue
            mark, self._held = self._held[: end + 1], self._held[end + 1 :]
            yield from self._mark(mark)

    def finish(self) -> Iterator[harmony.Event]:
        """What is still held at the end of the answer, as written."""
        held, self._held = self._held, ""
        yield from self._plain(held)

    def _plain(self, text: str) -> Iterator[harmony.Event]:
        if text:
            self.text += text
            yield harmony.Event("content", text)

    def _mark(self, mark: str) -> Iterator[harmony.Event]:
        found = MARK.fullmatch(mark)
        line = int(found.group(2)) if found and found.group(2) else None
        source = self.lookup(int(found.group(1)), line) if found else None
        if source is None:
            yield from self._plain(mark)
            return
        if self.text and not self.text[-1].isspace():
            yield from self._plain(" ")
        shown = link(source)
        self.found.append((len(self.text), len(self.text) + len(shown), source))
        self.text += shown
        yield harmony.Event("content", shown, source=source)


def rewrite(text: str, lookup: Lookup) -> str:
    """A whole answer with its marks made into links (what the streamed events add up to)."""
    citations = Citations(lookup)
    for _ in citations.feed(text):
        pass
    for _ in citations.finish():
        pass
    return citations.text
