"""The browser's citation marks made into links, as the answer streams: a mark
split across pieces, a mark with no page behind it (kept as written), a
bracket that is not a mark, the text at the end, the span each link takes."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from edgeoss import harmony
from edgeoss.tools import page_text
from edgeoss.tools.browser import BrowserSession, _Shown
from edgeoss.tools.citations import MAX_MARK, Citations, rewrite
from edgeoss.tools.web import Policy

MOON = harmony.Source("https://example.org/moon", "The Moon")


def lookup(cursor: int, line: int | None) -> harmony.Source | None:
    return MOON if cursor == 1 else None


def streamed(pieces: list[str]) -> tuple[str, list[harmony.Event]]:
    cite = Citations(lookup)
    events = [e for piece in pieces for e in cite.feed(piece)] + list(cite.finish())
    return "".join(e.text for e in events), events


def test_a_mark_becomes_the_pages_link_with_its_span() -> None:
    cite = Citations(lookup)
    events = [*cite.feed("About 384,400 km【1†L4-L5】."), *cite.finish()]
    assert cite.text == "About 384,400 km ([example.org](https://example.org/moon))."
    (cited,) = [e for e in events if e.source is not None]
    assert cited.source == MOON and cited.text == "([example.org](https://example.org/moon))"
    ((start, end, source),) = cite.found
    assert cite.text[start:end] == cited.text and source == MOON


def test_a_mark_split_across_pieces_is_held_until_it_ends() -> None:
    whole = "It is far 【1†L4-L5】 away."
    for cut in range(1, len(whole)):
        text, events = streamed([whole[:cut], whole[cut:]])
        assert text == "It is far ([example.org](https://example.org/moon)) away.", cut
        assert sum(e.source is not None for e in events) == 1


def test_what_cannot_be_resolved_stays_as_written() -> None:
    for text in ("see 【7†L1】 there", "a 【bracket】 in prose", "open 【 and never closed", "【1†L2", "【】"):
        assert rewrite(text, lookup) == text


def test_a_lone_bracket_is_not_held_past_the_longest_mark() -> None:
    cite = Citations(lookup)
    out = "".join(e.text for e in cite.feed("【" + "x" * MAX_MARK))
    assert out.startswith("【x")  # given back once it is longer than any mark could be


def test_a_bracket_before_a_mark_is_text_however_the_pieces_fall() -> None:
    for pieces in (["【", "【1†", "】"], ["【【1†】"], ["【【", "1†】"]):
        text, _ = streamed(pieces)
        assert text == "【 ([example.org](https://example.org/moon))", pieces


@given(st.lists(st.text(alphabet="ab 【】†L1-0.", max_size=12), max_size=8))
def test_streaming_adds_up_to_the_whole_rewrite(pieces: list[str]) -> None:
    text, _ = streamed(pieces)
    assert text == rewrite("".join(pieces), lookup)


def session_with_pages() -> BrowserSession:
    session = BrowserSession(None, Policy(allow_private=True))
    html = '<h1>Search Results</h1><ul><li><a href="https://example.org/moon">The Moon</a> far away</li></ul>'
    results = page_text.from_html(html, "", "moon")
    moon = page_text.from_text("The Moon is 384,400 km away.", "https://example.org/moon", "The Moon")
    local = page_text.from_text("no web address", "", "")
    session.stack += [_Shown(results, "search"), _Shown(moon, "page"), _Shown(local, "page")]
    return session


def test_a_browser_resolves_a_page_and_a_search_result_line() -> None:
    session = session_with_pages()
    assert session.source(1, 0) == harmony.Source("https://example.org/moon", "The Moon")
    line = next(i for i, text in enumerate(session.stack[0].page.lines) if "The Moon" in text)
    assert session.source(0, line) == harmony.Source("https://example.org/moon", "The Moon")
    assert session.source(0, None) is None  # a search page has no address of its own
    assert session.source(2, 0) is None  # nor has a page with no web address
    assert session.source(9, 0) is None and session.source(-1, 0) is None
