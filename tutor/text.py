"""What a person typed, as it is stored: one cleaning for every path that saves text.

A student's question, a teacher's approved or edited reply, their own reply on a
rejection and their instruction for a new draft all go through `clean_text`, whether
they came over a socket or an HTTP form.
"""

from __future__ import annotations

import re
import unicodedata

# C0 and C1 control characters except tab and newline. PostgreSQL cannot store NUL at all
# (DataError), and none of them means anything on screen. A person cannot see them to
# delete them either, so they are removed rather than refused.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

# Characters that draw nothing by themselves: controls, format characters (zero-width
# space and joiners, the byte-order mark, bidi marks), spaces and separators, combining
# marks with no base, unassigned code points.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp", "Mn", "Me", "Cn"})
# Letters and symbols that fonts draw as blanks (Hangul fillers, the blank Braille cell).
_BLANK_CHARACTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
# What is trimmed from the ends: the invisible characters that stand alone. Combining
# marks stay, since they belong to the character before them (an accent, an emoji's
# variation selector).
_TRIMMED_CATEGORIES = _INVISIBLE_CATEGORIES - {"Mn", "Me"}


def is_visible(character: str) -> bool:
    return unicodedata.category(character) not in _INVISIBLE_CATEGORIES and character not in _BLANK_CHARACTERS


def clean_text(text: str | None) -> str:
    """The text to store: line ends made "\\n", control characters other than tab and
    newline removed, spaces and zero-width characters trimmed from both ends.

    Returns "" when no visible character is left (say "\\u200b\\u200b"): callers treat
    that exactly as an empty message.
    """
    text = (text or "").replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    if not any(is_visible(ch) for ch in text):
        return ""
    start, end = 0, len(text)
    while _trimmed(text[start]):
        start += 1
    while _trimmed(text[end - 1]):
        end -= 1
    return text[start:end]


def _trimmed(character: str) -> bool:
    return unicodedata.category(character) in _TRIMMED_CATEGORIES or character in _BLANK_CHARACTERS


def title_from(text: str, limit: int = 60) -> str:
    """A conversation's title from its first question: the first line, cut at the last
    whole word within `limit` characters, with an ellipsis when something was cut (one
    word longer than the limit is cut where it must be)."""
    line = " ".join(text.split("\n", 1)[0].split())
    if len(line) <= limit:
        return line
    cut = line[: limit - 1]
    if line[limit - 1] != " " and " " in cut:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:.-") + "…"
