"""An article's Markdown to safe HTML: CommonMark (markdown-it-py, raw HTML off, tables and
strikethrough on), then nh3, which keeps a fixed set of tags and attributes and only http(s) and
mailto links. Either step alone would do for most input; both are cheap and the second does not
trust the first."""

from __future__ import annotations

import functools
import html

import nh3
from markdown_it import MarkdownIt

URL_SCHEMES = frozenset({"http", "https", "mailto"})
TAGS = frozenset(
    {"a", "abbr", "b", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i",
     "img", "kbd", "li", "ol", "p", "pre", "s", "strong", "sub", "sup", "table", "tbody", "td", "th", "thead",
     "tr", "ul"}
)  # fmt: skip
ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title"}, "th": {"style"}, "td": {"style"}}


@functools.cache
def _markdown() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": False, "linkify": False}).enable(["table", "strikethrough"])


def sanitise(html: str) -> str:
    return nh3.clean(
        html,
        tags=set(TAGS),
        attributes={tag: set(names) for tag, names in ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        link_rel="noopener noreferrer nofollow",
        filter_style_properties={"text-align"},
    )


def to_html(markdown: str) -> str:
    """The body as the page shows it: rendered, then sanitised."""
    return sanitise(_markdown().render(markdown or ""))


def excerpt(body_html: str, length: int = 200) -> str:
    """The start of a rendered body as plain text (no Markdown marks, no markup; escaped where shown)."""
    text = " ".join(html.unescape(nh3.clean(body_html or "", tags=set())).split())
    return text if len(text) <= length else text[: length - 1] + "…"
