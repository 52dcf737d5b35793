"""What a reviewer should see at a glance about a draft: plain heuristics, English and French.

They only sort and flag drafts for a person; they never decide anything on their own.
"""

from __future__ import annotations

import re
import unicodedata

from django.utils.translation import gettext_lazy as _

# Codes in the order a reviewer should care about them (FLAG_ORDER). "distressed" is the
# question's safety tier (1 or 2, tutor.safeguarding): the card's label says the tier and
# category. "unsafe_draft" is the draft's own safety check (tutor.checks.check_safety).
DISTRESSED = "distressed"
UNSAFE_DRAFT = "unsafe_draft"
MATHS_ERROR = "maths_error"
WRONG_LANGUAGE = "wrong_language"
REPEATS = "repeats"
GIVES_ANSWER = "gives_answer"
UNSURE = "unsure"
LONG = "long"

FLAG_ORDER = (DISTRESSED, UNSAFE_DRAFT, MATHS_ERROR, WRONG_LANGUAGE, REPEATS, GIVES_ANSWER, UNSURE, LONG)

FLAG_LABELS = {
    DISTRESSED: _("The student may be upset"),
    UNSAFE_DRAFT: _("The draft may be unsafe: read it closely"),
    MATHS_ERROR: _("Wrong maths"),
    WRONG_LANGUAGE: _("Not in the student's language"),
    REPEATS: _("Repeats itself"),
    GIVES_ANSWER: _("Gives the answer"),
    UNSURE: _("The model was unsure"),
    LONG: _("Long"),
}
# When only the wording suggests it (no exercise the checker could solve), a guess.
GIVES_ANSWER_GUESS_LABEL = _("May give away the answer")

# Below this mean token probability the model was guessing more than usual.
UNSURE_BELOW = 0.5
# A draft above this share of the class's word limit takes noticeably longer to read.
LONG_SHARE = 0.75


def _plain(text: str) -> str:
    text = unicodedata.normalize("NFKD", text or "")
    return "".join(c for c in text if not unicodedata.combining(c)).lower().replace("\u2019", "'")


# Matched on lower-case text without accents. Err towards flagging: a flag only sorts a
# draft first for a person to read.
_DISTRESS_PATTERNS = (
    # English
    r"\b(?:kill|hurt|harm|cut)(?:ing)? myself\b",
    r"\bsuicid",
    r"\bself[- ]?harm",
    r"\b(?:want|wanna|going) to die\b",
    r"\bend (?:it all|my life)\b",
    r"\bno reason to live\b",
    r"\bhate (?:myself|my life)\b",
    r"\bi(?:'m| am) (?:so )?(?:scared|terrified|depressed|hopeless|worthless|alone|desperate)\b",
    r"\bnobody (?:cares|likes me|loves me)\b",
    r"\bno one (?:cares|likes me|loves me)\b",
    r"\b(?:being|getting|been) bullied\b",
    r"\bbull(?:y|ies|ied) me\b",
    r"\b(?:abuse[sd]?|abusing) me\b",
    r"\bcan(?:'t|not) (?:cope|take it|go on|stop crying)\b",
    r"\bpanic attack",
    r"\bi(?:'m| am) crying\b",
    r"\b(?:beats?|hits?) me\b",
    # French
    r"\bme suicider\b",
    r"\benvie de mourir\b",
    r"\bveux mourir\b",
    r"\bme (?:tuer|faire du mal|couper|scarifier)\b",
    r"\bscarifi",
    r"\bharcel",
    r"\bdepressi|\bdeprime",
    r"\bdesespere",
    r"\bj(?:e n)?'en peux plus\b",
    r"\bje n'en peux plus\b",
    r"\bpersonne ne (?:m'aime|me comprend|m'ecoute)\b",
    r"\bje me sens (?:seule?|nulle?|inutile)\b",
    r"\bj'ai (?:tres |trop )?peur\b",
    r"\bje pleure\b",
    r"\bcrise d'angoisse",
    r"\bon me (?:frappe|bat|tape)\b",
    r"\bme (?:frappe|bat)\b",
)
_DISTRESS = re.compile("|".join(_DISTRESS_PATTERNS))

_GIVES_ANSWER_PATTERNS = (
    # English
    r"\bthe (?:final |correct |right )?(?:answer|solution|result) is\b",
    r"\b(?:so|therefore|thus|hence),? (?:the answer is|the result is|[a-z] is -?\d|[a-z] =)",
    r"\bthe answer:",
    r"\b(?:equals|is equal to)\s+-?\d",
    r"\bhere(?: is|'s) the (?:full |complete )?(?:answer|solution)\b",
    # French
    r"\bla (?:bonne |vraie )?(?:reponse|solution) (?:est|c'est)\b",
    r"\ble resultat (?:est|final est)\b",
    r"\b(?:donc|ainsi),? (?:la reponse est|x =|x vaut|on obtient|c'est)\b",
    r"\begal(?:e|es)? a\s+-?\d",
    r"\bvaut\s+-?\d",
    # An equation that ends on a number: "3 x 4 = 12." / "x = 5"
    r"[=]\s*-?\d+(?:[.,/]\d+)?\s*(?:[.!]|$)",
)
_GIVES_ANSWER = re.compile("|".join(_GIVES_ANSWER_PATTERNS))


def looks_distressed(text: str) -> bool:
    """The student's message has words of distress (English or French keywords). Only the
    fallback for when the safeguarding classifier fails (tutor.safeguarding.services)."""
    return bool(_DISTRESS.search(_plain(text)))


def seems_to_give_answer(text: str) -> bool:
    """The draft seems to state a final answer instead of guiding the student to it."""
    return bool(_GIVES_ANSWER.search(_plain(text)))


def word_count(text: str) -> int:
    return len((text or "").split())


def draft_flags(
    *, draft: str, mean_token_prob: float | None, distressed: bool, max_words: int, checks: dict | None = None
) -> list[str]:
    """The codes of what to check in a draft, in FLAG_ORDER.

    `checks` is what tutor.checks.run_checks found in this very text: its flags are taken
    as they are, and its exact "gives the answer" decision (the draft states the value of
    the student's own exercise, or does not) replaces the wording guess when it has one.
    """
    checks = checks or {}
    codes = set(c for c in checks.get("flags", ()) if c in FLAG_LABELS)
    if distressed:
        codes.add(DISTRESSED)
    exact = checks.get("gives_answer")
    if exact is True or (exact is None and draft and seems_to_give_answer(draft)):
        codes.add(GIVES_ANSWER)
    if draft and mean_token_prob is not None and mean_token_prob < UNSURE_BELOW:
        codes.add(UNSURE)
    if draft and word_count(draft) > max(20, LONG_SHARE * max_words):
        codes.add(LONG)
    return [code for code in FLAG_ORDER if code in codes]


def flag_views(codes: list[str], checks: dict | None = None) -> list[dict]:
    """Codes with their labels, in the reader's language. "gives_answer" says "gives" when
    the checker decided it exactly, "may give" when it is a guess from the wording."""
    exact = (checks or {}).get("gives_answer") is True
    return [
        {
            "code": code,
            "label": str(GIVES_ANSWER_GUESS_LABEL if code == GIVES_ANSWER and not exact else FLAG_LABELS[code]),
        }
        for code in codes
    ]
