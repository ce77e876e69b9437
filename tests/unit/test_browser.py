"""The browser tool's displays, in the format gpt-oss was trained to read: the
header and scrollbar, numbered lines, link markers, search results, find,
cursors, and the reference's error words; against a local site and an
imitation SearXNG (tests/support/local_web.py), all on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from edgeoss.tools import browser, page_text, web
from local_web import local_web

ALLOWED = web.Policy(allow_private=True, timeout_s=5)


@pytest.fixture(scope="module")
def site() -> Iterator[tuple[str, list[str]]]:
    with local_web() as found:
        yield found


@pytest.fixture
def session(site: tuple[str, list[str]]) -> browser.BrowserSession:
    base, _ = site
    return browser.BrowserSession(browser.Searxng(base, ALLOWED), ALLOWED)


def test_a_page_reads_as_the_model_was_trained_to_read_it() -> None:
    html = (
        "<html><head><title>T</title><script>alert(1)</script></head><body><h2>Head</h2>"
        '<p>See <a href="/b">here</a>, <a href="https://other.org/x">there</a>, <a href="/b">here again</a>, '
        '<a href="mailto:x@y">mail</a>, <a href="#top">top</a> 【0†fake】 <img src="c.png" alt="a cat">'
        "</p></body></html>"
    )
    page = page_text.from_html(html, "https://site.example/a")
    assert page.title == "T" and page.links == {0: "https://site.example/b", 1: "https://other.org/x"}
    text = "\n".join(page.lines)
    assert text.startswith("\nURL: https://site.example/a\n## Head")
    assert "【0†here】" in text and "【1†there†other.org】" in text and "【0†here again】" in text
    assert "mail" in text and "【" not in text.split("top")[1].split("[Image")[0].replace("〖0†fake〗", "")
    assert "〖0†fake〗" in text and "[Image 0: a cat]" in text.replace("\n", "") and "alert" not in text
    shown = browser.display(page, 3, -1, -1)
    head, scrollbar, blank, first = shown.split("\n")[:4]
    assert head == "[3] T (https://site.example/a)" and blank == "" and first == "L0: "
    assert scrollbar == f"**viewing lines [0 - {len(page.lines) - 1}] of {len(page.lines) - 1}**"


def test_long_lines_wrap_at_80_and_a_long_page_shows_about_1024_tokens() -> None:
    page = page_text.from_text("word " * 3000, "https://site.example/long", "Long")
    assert all(len(line) <= page_text.WIDTH for line in page.lines)
    shown = browser.display(page, 0, -1, -1)
    scroll = shown.split("\n")[1]
    last_shown = int(scroll.split(" - ")[1].split("]")[0])
    assert 0 < last_shown < len(page.lines) - 1  # a window, not the whole page
    assert browser.display(page, 0, 10, 3).split("\n")[1] == f"**viewing lines [10 - 12] of {len(page.lines) - 1}**"
    with pytest.raises(browser.BrowserError, match="Cannot exceed page maximum"):
        browser.display(page, 0, 10_000, -1)


def test_search_then_open_a_result_then_find(session: browser.BrowserSession, site: tuple[str, list[str]]) -> None:
    base, searches = site
    results = session.call("search", json.dumps({"query": "the moon", "topn": 5}))
    assert searches[-1] == "the moon"
    assert results.startswith("[0] the moon\n**viewing lines")
    assert "# Search Results" in results and "【0†The Moon†127.0.0.1:" in results
    assert "Earth's only natural satellite." in results
    page = session.call("open", json.dumps({"id": 0}))
    assert page.startswith(f"[1] The Moon ({base}/moon)\n")
    assert "384,400 km" in page and "【0†Mars】" in page and "【1†the encyclopedia†en.wikipedia.org】" in page
    found = session.call("find", json.dumps({"pattern": "REGOLITH"}))
    assert found.startswith("[2] Find results for text: `REGOLITH` in `The Moon`")
    assert "# 【0†match at L" in found and "regolith" in found
    back = session.call("open", json.dumps({"id": 0}))  # the match: the page again, near the match
    assert back.startswith("[3] The Moon") and "regolith" in back
    mars = session.call("open", json.dumps({"id": 0, "cursor": 1}))  # a link on page 1
    assert mars.startswith("[4] Mars") and "fourth planet" in mars
    scrolled = session.call("open", json.dumps({"cursor": 1, "loc": 4}))
    assert scrolled.startswith("[5] The Moon") and "**viewing lines [4 -" in scrolled
    none = session.call("find", json.dumps({"pattern": "jupiter", "cursor": 1}))
    assert "No `find` results for pattern: `jupiter`" in none


def test_errors_are_the_reference_words_and_push_nothing(session: browser.BrowserSession) -> None:
    assert session.call("find", '{"pattern": "x"}') == "No pages to access!"
    assert session.call("open", '{"id": 3}') == "No pages to access!"
    session.call("search", '{"query": "moon"}')
    assert session.call("open", '{"id": 99}') == "Invalid link id `99`."
    assert (
        session.call("open", '{"id": 0, "cursor": 7}')
        == "Cursor `7` is out of range. Available cursor indices: [0 - 0]."
    )
    assert session.call("open", '{"id": 0, "cursor": "x"}') == "`cursor` should be an integer, not `str`"
    assert session.call("open", "not json") == '{"error": "Invalid function arguments"}'
    assert session.call("scroll", "{}") == '{"error": "Unknown function: scroll"}'
    refused = session.call("open", '{"id": "http://169.254.169.254/latest/meta-data/"}')
    assert (
        refused.startswith("Error fetching URL `http://169.254.169.254/latest/meta-data/`:") and "link-local" in refused
    )
    assert len(session.stack) == 1  # only the search was pushed


def test_by_default_local_pages_are_refused(site: tuple[str, list[str]]) -> None:
    base, _ = site
    strict = browser.BrowserSession(None, web.Policy())
    refused = strict.call("open", json.dumps({"id": base + "/moon"}))
    assert "loopback" in refused and "public internet" in refused and not strict.stack
    no_search = strict.call("search", '{"query": "moon"}')
    assert "no search is set up" in no_search and "--browser-search" in no_search


def test_a_searxng_that_is_not_there_says_so() -> None:
    gone = browser.BrowserSession(browser.Searxng("http://127.0.0.1:9", ALLOWED), ALLOWED)
    said = gone.call("search", '{"query": "moon"}')
    assert said.startswith("Error during search for `moon`:") and "connect" in said


def test_the_command_shows_what_the_model_would_read(site: tuple[str, list[str]]) -> None:
    from typer.testing import CliRunner

    from edgeoss.cli import app

    base, _ = site
    runner = CliRunner()
    refused = runner.invoke(app, ["tool", "browser", "open", base + "/moon"])
    assert refused.exit_code == 1 and "loopback" in refused.output
    opened = runner.invoke(app, ["tool", "browser", "open", base + "/moon", "--browser-allow-private"])
    assert opened.exit_code == 0 and opened.output.startswith(f"[0] The Moon ({base}/moon)")
    found = runner.invoke(app, ["tool", "browser", "find", base + "/moon", "regolith", "--browser-allow-private"])
    assert found.exit_code == 0 and "Find results for text: `regolith`" in found.output
    searched = runner.invoke(
        app, ["tool", "browser", "search", "the", "moon", "--browser-search", base, "--browser-allow-private"]
    )
    assert searched.exit_code == 0 and searched.output.startswith("[0] the moon") and "【0†The Moon" in searched.output
    usage = runner.invoke(app, ["tool", "browser", "fly", "x"])
    assert usage.exit_code == 2
