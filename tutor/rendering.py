"""Markdown for chat messages: rendered on the server, sanitised with an allow-list.

The browser inserts only what `render_markdown` returns as HTML; everything else it
shows as text. Mathematics is not rendered here: it is found (outside code) and left
with its delimiters inside `<span class="math">`, which KaTeX's auto-render turns into
formulas in the browser. Finding it here keeps Markdown from eating `\\(`, `_` or `*`
inside a formula, and keeps "$5 and $10" from becoming one.
"""

from __future__ import annotations

import nh3
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.rules_core import StateCore
from markdown_it.rules_inline import StateInline

ALLOWED_TAGS = {
    "p",
    "br",
    "strong",
    "em",
    "del",
    "s",
    "code",
    "pre",
    "blockquote",
    "hr",
    "ul",
    "ol",
    "li",
    "h3",
    "h4",
    "h5",
    "h6",
    "a",
    "span",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}}
ALLOWED_CLASSES = {"span": {"math", "math-inline", "math-display"}}
URL_SCHEMES = {"http", "https", "mailto"}

# (opening, closing, display): tried in this order at each position.
_DELIMITERS = (("$$", "$$", True), ("\\[", "\\]", True), ("\\(", "\\)", False), ("$", "$", False))


def _math(state: StateInline, silent: bool) -> bool:
    src, pos, end = state.src, state.pos, state.posMax
    if src[pos] not in "$\\":
        return False
    for opening, closing, display in _DELIMITERS:
        if not src.startswith(opening, pos):
            continue
        start = pos + len(opening)
        close = _find_closing(src, start, end, closing, single_dollar=opening == "$")
        if close is None:
            continue
        content = src[start:close]
        if not content.strip():
            continue
        if not silent:
            token = state.push("math_display" if display else "math_inline", "", 0)
            token.markup = opening
            token.content = src[pos : close + len(closing)]
        state.pos = close + len(closing)
        return True
    return False


def _find_closing(src: str, start: int, end: int, closing: str, single_dollar: bool) -> int | None:
    """Where `closing` ends the formula that starts at `start`, or None.

    A single `$` follows the usual rule for prices: the opening one is not followed by a
    space, the closing one is not preceded by a space nor followed by a digit.
    """
    if single_dollar and (start >= end or src[start].isspace()):
        return None
    i = start
    while True:
        i = src.find(closing, i, end)
        if i < 0:
            return None
        if src[i - 1] == "\\" and closing == "$":  # an escaped dollar is text
            i += 1
            continue
        if single_dollar:
            after = src[i + 1] if i + 1 < end else ""
            if src[i - 1].isspace() or after.isdigit() or after == "$":
                i += 1
                continue
        return i


def _render_math(self: object, tokens: list, idx: int, options: dict, env: dict) -> str:
    token = tokens[idx]
    kind = "math-display" if token.type == "math_display" else "math-inline"
    return f'<span class="math {kind}">{escapeHtml(token.content)}</span>'


def _shift_headings(state: StateCore) -> None:
    """Headings inside a message sit under the page's own: # becomes h3."""
    for token in state.tokens:
        if token.type in ("heading_open", "heading_close"):
            token.tag = "h" + str(min(6, int(token.tag[1]) + 2))


def _build() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "breaks": True, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    md.disable("image")  # images from elsewhere are blocked by the CSP anyway; keep the link text
    md.inline.ruler.before("escape", "math", _math)
    md.add_render_rule("math_inline", _render_math)
    md.add_render_rule("math_display", _render_math)
    md.core.ruler.push("shift_headings", _shift_headings)
    return md


_md = _build()


def render_markdown(text: str) -> str:
    """Safe HTML for a message's Markdown: an allow-list of tags, no attributes that run
    code or style the page, links only to http(s) and mailto."""
    if not text:
        return ""
    html = _md.render(text)
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        allowed_classes=ALLOWED_CLASSES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        set_tag_attribute_values={"a": {"target": "_blank"}},
        strip_comments=True,
    ).strip()
