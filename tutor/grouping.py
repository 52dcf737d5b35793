"""Which pending questions of a class ask the same thing: plain functions, no model.

The embedding model runs in the worker (inference/similarity.py) and is handed in as an
`embed` function; this module only normalises text and compares vectors, so the web
process can use the fast path (the same normalised text) without loading anything.
"""

from __future__ import annotations

import difflib
import math
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

Embed = Callable[[list[str]], list[list[float]]]

# A question is grouped only when it can stand alone and is about one clear thing: very
# short messages ("help?") say too little to be sure two students mean the same, and long
# ones tend to carry the student's own situation.
MIN_WORDS = 3
MAX_WORDS = 40

_GREETING = re.compile(
    r"^(?:(?:hi|hello|hey|bonjour|salut|coucou|excuse me|excusez moi|sorry|pardon|madame|monsieur|sir|miss)\b[ ,]*)+"
)
_POLITE_END = re.compile(r"(?:[ ,]*\b(?:please|pls|thanks|thank you|merci|svp|stp|s il vous plait|s il te plait))+$")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)?")


def normalize_question(text: str) -> str:
    """The question reduced to what it asks: lower case, no accents, punctuation, greeting
    or 'please'. Two questions with the same normal form ask the same thing."""
    text = unicodedata.normalize("NFKD", text or "")
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    text = text.replace("'", " ").replace("\u2019", " ")
    text = re.sub(r"(\d)[.,](\d)", r"\1.\2", text)  # 1,5 and 1.5 are one number
    text = re.sub(r"[^\w./+*=^-]+|_", " ", text)
    text = re.sub(r"(?<!\d)[.]|[.](?!\d)", " ", text)  # full stops, not decimal points
    text = re.sub(r"\s+", " ", text).strip()
    text = _GREETING.sub("", text).strip()
    text = _POLITE_END.sub("", text).strip()
    return text[:200]


def numbers_in(text: str) -> list[str]:
    """The numbers a question is about: 'add 1/2 and 1/3' and 'add 1/2 and 1/4' differ."""
    return sorted(n.replace(",", ".") for n in _NUMBER.findall(text or ""))


def groupable_key(text: str, *, opens_conversation: bool, distressed: bool) -> str:
    """The question's normal form if it may be answered together with alike questions, else "".

    Only a question that opens its conversation is grouped: it stands alone, so its draft
    is written from the question alone and carries nothing of any one student's history.
    A distressed student is answered on their own.
    """
    if not opens_conversation or distressed:
        return ""
    key = normalize_question(text)
    words = [w for w in key.split() if any(c.isalpha() for c in w)]
    if len(words) < MIN_WORDS or len(key.split()) > MAX_WORDS:
        return ""
    return key


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    if not na or not nb:
        return 0.0
    return dot / (na * nb)


@dataclass
class Candidate:
    """A pending question that others may join: its reply id, normal form and vector."""

    reply_id: int
    key: str
    text: str = ""
    vector: list[float] | None = None


def find_alike(
    *,
    key: str,
    text: str,
    vector: list[float] | None,
    candidates: Sequence[Candidate],
    threshold: float,
    embed: Embed | None = None,
) -> tuple[Candidate | None, float]:
    """The candidate that asks the same as this question, and how alike they are (1.0 for
    the same normal form), or (None, best score below the threshold).

    The same normal form wins first (the fast path, no model). Otherwise the cosine of the
    sentence embeddings must reach `threshold`, and the numbers in both must be the same
    ("what is 3 x 4" and "what is 3 x 5" embed alike but are different exercises).
    Candidates with no vector yet are embedded with `embed` (their vector is filled in).
    """
    for candidate in candidates:
        if candidate.key and candidate.key == key:
            return candidate, 1.0
    if vector is None:
        return None, 0.0
    missing = [c for c in candidates if c.vector is None and c.text]
    if missing and embed is not None:
        for candidate, v in zip(missing, embed([c.text for c in missing]), strict=True):
            candidate.vector = list(v)
    mine = numbers_in(text)
    best, best_score = None, 0.0
    for candidate in candidates:
        if candidate.vector is None or len(candidate.vector) != len(vector):
            continue
        if numbers_in(candidate.text or candidate.key) != mine:
            continue
        score = cosine(vector, candidate.vector)
        if score > best_score:
            best, best_score = candidate, score
    if best is not None and best_score >= threshold:
        return best, best_score
    return None, best_score


def group_questions(texts: Sequence[str], *, embed: Embed | None, threshold: float) -> list[list[int]]:
    """Group questions in the order they arrive, as the worker does: each joins the most
    alike earlier group lead, or leads a new group. Returns lists of indexes into `texts`."""
    leads: list[Candidate] = []
    groups: dict[int, list[int]] = {}
    vectors = embed(list(texts)) if embed is not None and texts else [None] * len(texts)
    for i, text in enumerate(texts):
        key = groupable_key(text, opens_conversation=True, distressed=False)
        vector = list(vectors[i]) if vectors[i] is not None else None
        if key:
            lead, _ = find_alike(key=key, text=text, vector=vector, candidates=leads, threshold=threshold)
            if lead is not None:
                groups[lead.reply_id].append(i)
                continue
            leads.append(Candidate(reply_id=i, key=key, text=text, vector=vector))
        groups[i] = [i]
    return list(groups.values())


_WORD = re.compile(r"\w+")


def edit_distance(a: Sequence, b: Sequence) -> int:
    """Levenshtein distance between two sequences (of letters, of words): how many items
    added, dropped or changed turn a into b."""
    previous = list(range(len(b) + 1))
    for i, xa in enumerate(a, 1):
        current = [i]
        for j, xb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (xa != xb)))
        previous = current
    return previous[-1]


def _within_a_typo(a: str, b: str) -> bool:
    """True when b is a at most one slip away (two for longer words): a letter added,
    dropped, swapped or changed."""
    limit = 1 if max(len(a), len(b)) <= 5 else 2
    if abs(len(a) - len(b)) > limit:
        return False
    return edit_distance(a, b) <= limit


def adds_own_words(draft: str, final: str) -> bool:
    """True when `final` says something that the model's `draft` did not: a word added,
    or a word replaced by another that is not a typo fix of it. Changes of case, spacing
    and punctuation, typo fixes and cut words keep it the draft.

    A group's draft is generic, written from the question alone; words a teacher adds may
    be meant for one student ("Bob, as we discussed…"), so they are not sent to the
    group unless the teacher says so (tutor.services.reply_approve).
    """
    old = _WORD.findall(unicodedata.normalize("NFKC", draft or "").lower())
    new = _WORD.findall(unicodedata.normalize("NFKC", final or "").lower())
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if tag == "insert":
            return True
        if tag == "replace":
            if j2 - j1 > i2 - i1:
                return True
            if not all(_within_a_typo(a, b) for a, b in zip(old[i1:i2], new[j1:j2], strict=False)):
                return True
    return False
