"""A web page as the text gpt-oss's browser tool shows: markdown-like text, each
link a marker `【{id}†{text}】` (or `【{id}†{text}†{domain}】` for another
site) whose id `open` takes, each image `[Image {n}: {alt}]`, lines wrapped at
80 characters. This is the format the model was trained to read and cite.

HTML is parsed by BeautifulSoup on lxml (made for broken real-world HTML) and
turned into text by markdownify; this module only decides what links and
images become before that.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field
from urllib.parse import unquote, urljoin, urlsplit

from bs4 import BeautifulSoup
from bs4.element import NavigableString, Tag
from markdownify import MarkdownConverter

WIDTH = 80
DROPPED = ("script", "style", "noscript", "template", "math", "svg", "iframe", "object", "embed", "head")
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")  # emoji and the like: no place in a text page
_BLANKS = re.compile(r"\n{3,}")


@dataclass
class PageText:
    url: str
    title: str
    lines: list[str]
    links: dict[int, str] = field(default_factory=dict)  # id -> absolute URL


def domain(url: str) -> str:
    return urlsplit(url).netloc


def wrap(text: str) -> list[str]:
    """Lines of at most WIDTH characters, whitespace kept (a continuation starts with the
    space it broke at); an empty line stays one."""
    out: list[str] = []
    for line in text.split("\n"):
        out += textwrap.wrap(line, WIDTH, drop_whitespace=False, replace_whitespace=False) or [""]
    return out


def _tidy(text: str) -> str:
    lines = [line.rstrip() if not line.strip() else line for line in text.strip().split("\n")]
    return _BLANKS.sub("\n\n", "\n".join("" if not line.strip() else line for line in lines))


def from_text(text: str, url: str, title: str) -> PageText:
    """A page of plain text (text/plain, JSON, a page's source)."""
    body = _tidy(_ASTRAL.sub("", text).replace("【", "〖").replace("】", "〗"))
    return PageText(url, title or domain(url) or url, wrap(f"\nURL: {url}\n{body}"))


def from_html(html: str, url: str, title: str = "") -> PageText:
    """A page of HTML, with its links numbered in document order (one id per URL)."""
    html = _ASTRAL.sub("", html).replace("\u200b", "").replace("【", "〖").replace("】", "〗")
    soup = BeautifulSoup(html, "lxml")
    found_title = soup.title.get_text(" ", strip=True) if soup.title else ""
    for tag in soup.find_all(DROPPED):
        tag.decompose()
    links: dict[str, int] = {}
    for a in soup.find_all("a"):
        _link(a, url, links)
    for n, img in enumerate(soup.find_all("img")):
        alt = " ".join(str(img.get("alt") or img.get("title") or "").split())
        img.replace_with(NavigableString(f"[Image {n}: {alt}]" if alt else f"[Image {n}]"))
    for name, mark in (("sup", "^"), ("sub", "_")):
        for element in soup.find_all(name):
            text = element.get_text("", strip=True)
            element.replace_with(NavigableString(f"{mark}{{{text}}}" if text else ""))
    converter = MarkdownConverter(
        heading_style="ATX", bullets="*", escape_asterisks=False, escape_underscores=False, escape_misc=False
    )
    body = _tidy(converter.convert_soup(soup))
    shown = unquote(url)
    page_title = title or found_title or domain(url) or "untitled"
    return PageText(url, page_title, wrap(f"\nURL: {shown}\n{body}"), {i: u for u, i in links.items()})


def _link(a: Tag, page_url: str, links: dict[str, int]) -> None:
    text = " ".join(a.get_text(" ").split()).replace("†", "‡")
    href = str(a.get("href") or "").strip()
    if not text:
        a.decompose()  # an image-only link: nothing to read or cite
        return
    target = urljoin(page_url, href) if href else ""
    parts = urlsplit(target)
    if not href or href.startswith("#") or parts.scheme not in ("http", "https") or not parts.netloc:
        a.replace_with(NavigableString(text))  # mailto:, javascript:, an anchor: text only
        return
    link_id = links.setdefault(target, len(links))
    same_site = page_url and domain(page_url) == parts.netloc
    a.replace_with(NavigableString(f"【{link_id}†{text}】" if same_site else f"【{link_id}†{text}†{parts.netloc}】"))
