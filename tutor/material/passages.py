"""Splitting a document's text into passages that a search can find and a prompt can
quote: about PASSAGE_WORDS words each, cut at paragraph ends where possible, each with
the page (PDF) or the section heading (Markdown) it comes from."""

from __future__ import annotations

import re
from dataclasses import dataclass

PASSAGE_WORDS = 60
_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.+?)\s*#*\s*$")


@dataclass(frozen=True)
class Passage:
    text: str
    page: int | None = None
    section: str = ""


def _paragraphs(text: str) -> list[str]:
    text = re.sub(r"-\n(?=\w)", "", text)  # words hyphenated across PDF lines
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if p.strip()]


_SENTENCE = re.compile(r"(?<=[.!?\u2026])\s+(?=[\"'(\[\u00ab]?[A-Z\u00c0-\u00dd0-9])")


def _sentences(paragraphs: list[str]) -> list[str]:
    # A PDF's lines carry no blank line between paragraphs: pack by sentences, not paragraphs.
    return [s for p in paragraphs for s in _SENTENCE.split(p) if s.strip()]


def _pack(paragraphs: list[str], *, page: int | None, section: str) -> list[Passage]:
    out: list[Passage] = []
    words: list[str] = []
    for paragraph in _sentences(paragraphs):
        pw = paragraph.split()
        if words and len(words) + len(pw) > PASSAGE_WORDS:
            out.append(Passage(" ".join(words), page, section))
            words = []
        words.extend(pw)
        while len(words) > PASSAGE_WORDS * 3 // 2:  # one very long paragraph: cut it
            out.append(Passage(" ".join(words[:PASSAGE_WORDS]), page, section))
            words = words[PASSAGE_WORDS:]
    if words:
        out.append(Passage(" ".join(words), page, section))
    return out


def from_pages(pages: list[tuple[int, str]]) -> list[Passage]:
    """A PDF's passages: none crosses a page, so each cites one page."""
    out: list[Passage] = []
    for number, text in pages:
        out.extend(_pack(_paragraphs(text), page=number, section=""))
    return out


def from_text(text: str, *, markdown: bool) -> list[Passage]:
    """A text file's passages; in Markdown, none crosses a heading, and each names its section."""
    if not markdown:
        return _pack(_paragraphs(text), page=None, section="")
    out: list[Passage] = []
    section, lines = "", []
    for line in text.splitlines():
        heading = _HEADING.match(line)
        if heading:
            out.extend(_pack(_paragraphs("\n".join(lines)), page=None, section=section))
            section, lines = heading.group(2)[:200], []
        else:
            lines.append(line)
    out.extend(_pack(_paragraphs("\n".join(lines)), page=None, section=section))
    return out
