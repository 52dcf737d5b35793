"""Checks a draft gets before its card turns ready, and again when a teacher edits it.

Each check reads the draft (and what it answers) and returns flags and details for the
card; none changes the text. They run one after the other under a hard cap per draft
(TUTOR_CHECK_CAP_MS): a check that could not finish says "not checked", never "correct".

To add a check, write `def check_x(text, context) -> tuple[list[str], dict]` and add it to
DRAFT_CHECKS: its flags join the card's (codes and labels in tutor/triage.py), its details
are kept under its name in the reply's `checks`.

The safety check is the safeguarding classifier (tutor/safeguarding/) reading the draft,
on a local embedding model without torch; it is not under the cap (UNCAPPED_CHECKS).

The language detector is py3langid (its model ships in the wheel: nothing is downloaded),
restricted to the languages a school is likely to meet, which makes short texts reliable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tutor.models import Message

import logging
import re
import threading
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.utils.translation import get_language, gettext_lazy, ngettext
from django.utils.translation import gettext as _

from tutor import mathcheck, triage

log = logging.getLogger(__name__)

# --- Language.

LANGUAGES = ("en", "fr", "es", "de", "it", "pt", "nl", "ar", "tr", "pl", "ro", "ru", "uk", "zh")
# For the model's instruction (the system prompt is in English) ...
ENGLISH_NAMES = {
    "en": "English",
    "fr": "French",
    "es": "Spanish",
    "de": "German",
    "it": "Italian",
    "pt": "Portuguese",
    "nl": "Dutch",
    "ar": "Arabic",
    "tr": "Turkish",
    "pl": "Polish",
    "ro": "Romanian",
    "ru": "Russian",
    "uk": "Ukrainian",
    "zh": "Chinese",
}
# The same instruction in the language itself: a small model follows an instruction in
# the language it must write more often than one in English (bench/quality.py).
IN_THE_LANGUAGE = {
    "en": "Answer only in English.",
    "fr": "Réponds uniquement en français.",
    "es": "Responde solo en español.",
    "de": "Antworte nur auf Deutsch.",
    "it": "Rispondi solo in italiano.",
    "pt": "Responde apenas em português.",
}


def language_instruction(code: str) -> str:
    """How the model is told the language of the student's reply, in the prompt and in
    the automatic retry."""
    name = ENGLISH_NAMES.get(code, code)
    return f"Write the whole reply in {name}, the student's language, and no other language. {IN_THE_LANGUAGE.get(code, '')}".strip()


# ... and for the teacher's card, in their language.
LANGUAGE_LABELS = {
    "en": gettext_lazy("English"),
    "fr": gettext_lazy("French"),
    "es": gettext_lazy("Spanish"),
    "de": gettext_lazy("German"),
    "it": gettext_lazy("Italian"),
    "pt": gettext_lazy("Portuguese"),
    "nl": gettext_lazy("Dutch"),
    "ar": gettext_lazy("Arabic"),
    "tr": gettext_lazy("Turkish"),
    "pl": gettext_lazy("Polish"),
    "ro": gettext_lazy("Romanian"),
    "ru": gettext_lazy("Russian"),
    "uk": gettext_lazy("Ukrainian"),
    "zh": gettext_lazy("Chinese"),
}
# What teachers type in "language of replies", accents and case aside.
_LANGUAGE_WORDS = {
    "en": ("en", "english", "anglais"),
    "fr": ("fr", "french", "francais", "français"),
    "es": ("es", "spanish", "espagnol", "espanol"),
    "de": ("de", "german", "allemand", "deutsch"),
    "it": ("it", "italian", "italien", "italiano"),
    "pt": ("pt", "portuguese", "portugais", "portugues"),
    "nl": ("nl", "dutch", "neerlandais", "nederlands"),
    "ar": ("ar", "arabic", "arabe"),
    "tr": ("tr", "turkish", "turc"),
    "pl": ("pl", "polish", "polonais"),
    "ro": ("ro", "romanian", "roumain"),
    "ru": ("ru", "russian", "russe"),
    "uk": ("uk", "ukrainian", "ukrainien"),
    "zh": ("zh", "chinese", "chinois", "mandarin"),
}
MIN_LETTERS = 20  # fewer letters than this: too little text to tell its language
MIN_CONFIDENCE = 0.8

_identifiers: dict[tuple, object] = {}
_identifier_lock = threading.Lock()


def _plain(text: str) -> str:
    text = unicodedata.normalize("NFKD", text or "")
    return "".join(c for c in text if not unicodedata.combining(c)).lower().strip()


def language_code(name: str) -> str | None:
    """The code of a language as a teacher names it ("French", "français", "fr")."""
    plain = _plain(name).rstrip(".")
    for code, words in _LANGUAGE_WORDS.items():
        if plain in (_plain(w) for w in words):
            return code
    return None


def _get_identifier(languages: tuple[str, ...] = LANGUAGES):
    with _identifier_lock:
        if languages not in _identifiers:
            from py3langid.langid import MODEL_FILE, LanguageIdentifier

            identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
            identifier.set_languages(list(languages))
            _identifiers[languages] = identifier
        return _identifiers[languages]


def _site_languages() -> tuple[str, ...]:
    return tuple(code for code, _name in settings.LANGUAGES)


_NOT_WORDS = re.compile(r"\$[^$]*\$|\\\(.*?\\\)|\\\[.*?\\\]|https?://\S+|[\d_*#>`|=+\-/^%()\[\]{}<>×÷·.,;:!?\"'’«»…]+")


def detect_language(
    text: str,
    *,
    among: tuple[str, ...] = LANGUAGES,
    min_letters: int = MIN_LETTERS,
    min_confidence: float = MIN_CONFIDENCE,
) -> tuple[str | None, float]:
    """(code, confidence) of the text's language among `among`; (None, confidence) when
    there is too little text (maths, numbers and formulas aside) or the detector is unsure."""
    words = _NOT_WORDS.sub(" ", text or "")
    if sum(c.isalpha() for c in words) < min_letters:
        return None, 0.0
    code, confidence = _get_identifier(among).classify(words)
    if confidence < min_confidence:
        return None, float(confidence)
    return code, float(confidence)


def language_of(text: str) -> str | None:
    """The language of a student's message or a draft. A short one ("Calcule 20 % de 45",
    "The answer is 7.") is told apart only among the site's languages, where a few words
    are enough (measured on the 84 questions of bench/quality.py: all right at 0.6, while
    the general detector is unsure of a third of them)."""
    code, _confidence = detect_language(text)
    if code:
        return code
    code, _confidence = detect_language(text, among=_site_languages(), min_letters=5, min_confidence=0.6)
    return code


def expected_language(*, question: str, reply_language: str = "", student_language: str = "") -> str | None:
    """The language the reply should be in: the class's language of replies when a teacher
    set one; else the student's message's; else the student's account language. None when
    none of them can be told."""
    if reply_language.strip():
        return language_code(reply_language)
    code = language_of(question)
    if code:
        return code
    return student_language if student_language in LANGUAGES else None


# --- Loops and echoes.

_WORD = re.compile(r"\S+")


def _norm_word(word: str) -> str:
    return re.sub(r"[^\w]", "", _plain(word))


@dataclass
class Repetition:
    kind: str  # "loop" (says the same thing again and again) or "echo" (repeats the question)
    kept: str  # the draft cut at the loop, or without the echoed question


def find_repetition(text: str, question: str = "") -> Repetition | None:
    """A draft that loops ("12 12 12 12", a sentence said twice) or repeats the student's
    question back; None for a draft that does neither. `kept` is the draft without the
    echoed question and cut where the loop begins (the echo itself, once, when nothing
    else is left)."""
    text = text or ""
    kind, kept = None, text
    asked = [w for w in (_norm_word(m.group()) for m in _WORD.finditer(question or "")) if w]
    if len(asked) >= 4:
        matches = list(_WORD.finditer(text))
        words = [_norm_word(m.group()) for m in matches]
        n = len(asked)
        # The question, word for word, near the start of the draft (or anywhere when long).
        for start in range(0, min(len(words) - n + 1, 40 if n < 8 else len(words))):
            if words[start : start + n] == asked:
                kind = "echo"
                rest = (text[: matches[start].start()] + text[matches[start + n - 1].end() :]).strip()
                rest = rest.lstrip(" \n:,.?!-\u2013\u2014")
                rest = _cut_loop(rest) or rest
                kept = rest if len(rest.split()) >= 3 else (_cut_loop(text) or text)
                break
    cut = _cut_loop(kept)
    if cut is not None:
        kind, kept = kind or "loop", cut
    return Repetition(kind, kept) if kind else None


def _cut_loop(text: str) -> str | None:
    """The text cut where it starts to loop: a stretch of 1 to 12 words repeated back to
    back (4 times for one word, 3 for more), or a sentence of four words or more said a
    second time. None when it does not loop."""
    matches = list(_WORD.finditer(text))
    words = [_norm_word(m.group()) for m in matches]
    cut = None
    for size in range(1, 13):
        times = 4 if size == 1 else 3
        for i in range(0, len(words) - size * times + 1):
            if cut is not None and i + size >= cut:
                break
            piece = words[i : i + size]
            if not any(piece) or not all(words[i + k * size : i + (k + 1) * size] == piece for k in range(1, times)):
                continue
            cut = i + size if cut is None else min(cut, i + size)
            break
    seen: set[str] = set()
    for m in re.finditer(r"[^.!?\n]+[.!?\n]*", text):
        key = " ".join(w for w in (_norm_word(x) for x in m.group().split()) if w)
        if len(key.split()) >= 4:
            if key in seen:
                index = next(k for k, w in enumerate(matches) if w.start() >= m.start())
                cut = index if cut is None else min(cut, index)
                break
            seen.add(key)
    if cut is None:
        return None
    return text[: matches[cut - 1].end()].rstrip(" ,;:-\u2013\u2014") if cut > 0 else ""


# --- The checks, run under one cap.


@dataclass
class DraftContext:
    """What a draft is checked against, worked out once per reply."""

    question: str = ""
    language: str | None = None  # the expected language's code, or None (not checked)
    exercise: mathcheck.Exercise | None = None
    decimal_comma: bool | None = None  # the student's notation when the language says it
    question_tier: int = 0  # the question's safety tier (tutor.safeguarding): 0, 1 or 2
    extra: dict = field(default_factory=dict)  # for checks added later

    def facts(self) -> str:
        """Verified working for the model's prompt, or ""."""
        if self.exercise is None:
            return ""
        try:
            return self.exercise.fact(decimal_comma=bool(self.decimal_comma))
        except Exception:  # noqa: BLE001 (an odd value to print: no facts rather than a failed draft)
            return ""


def draft_context(
    *, question: str, reply_language: str = "", student_language: str = "", question_tier: int = 0
) -> DraftContext:
    language = expected_language(question=question, reply_language=reply_language, student_language=student_language)
    comma = {"fr": True, "en": False}.get(language or "")
    try:
        exercise = mathcheck.find_exercise(question, decimal_comma=comma)
    except Exception:  # noqa: BLE001 (a question we cannot read holds no exercise for us)
        exercise = None
    return DraftContext(
        question=question, language=language, exercise=exercise, decimal_comma=comma, question_tier=question_tier
    )


def _languages_of(reply: Message) -> dict:
    """What tells the language a tutor reply should be in (expected_language's arguments)."""
    conversation = reply.conversation
    return {
        "question": reply.in_reply_to.text,
        "reply_language": conversation.classroom.reply_language,
        "student_language": getattr(conversation.student, "language", "") or "",
    }


def reply_language(reply: Message) -> str | None:
    """The language a tutor reply should be in (DraftContext.language), without the rest
    of its context."""
    return expected_language(**_languages_of(reply))


def context_for(reply: Message) -> DraftContext:
    """What a tutor reply's draft is checked against: its question, the language it should
    be in, the exercise the question holds, how worrying the question was."""
    return draft_context(**_languages_of(reply), question_tier=reply.safety_tier)


def check_safety(text: str, context: DraftContext) -> tuple[list[str], dict]:
    """An unsafe draft: it names an explicit means or plan, or brings up self-harm, abuse,
    violence or sex in reply to a question that had none (the rule is
    tutor.safeguarding.services.draft_safety_category)."""
    from tutor.safeguarding import services as safeguarding  # it reads the database: only when it runs

    category = safeguarding.draft_safety_category(draft=text, question_tier=context.question_tier)
    return ([triage.UNSAFE_DRAFT] if category else []), {"category": category}


def check_maths(text: str, context: DraftContext) -> tuple[list[str], dict]:
    comma = context.decimal_comma
    if comma is None:
        comma = {"fr": True, "en": False}.get(language_of(text) or "")
    report = mathcheck.check_text(
        text,
        decimal_comma=comma,
        exercise=context.exercise,
        budget_s=settings.TUTOR_MATHS_BUDGET_MS / 1000,
    )
    flags = [triage.MATHS_ERROR] if report.wrong else []
    return flags, report.as_json()


def check_language(text: str, context: DraftContext) -> tuple[list[str], dict]:
    if not context.language:
        return [], {"expected": None, "found": None}
    found = language_of(text)
    details = {"expected": context.language, "found": found}
    if found is not None and found != context.language:
        return [triage.WRONG_LANGUAGE], details
    return [], details


def check_repeats(text: str, context: DraftContext) -> tuple[list[str], dict]:
    repetition = find_repetition(text, context.question)
    if repetition is None:
        return [], {}
    return [triage.REPEATS], {"kind": repetition.kind, "kept": repetition.kept}


DraftCheck = Callable[[str, DraftContext], tuple[list[str], dict]]

# Each check by name, in the order they run. Add a check here (see the module's docstring).
DRAFT_CHECKS: dict[str, DraftCheck] = {
    "safety": check_safety,
    "maths": check_maths,
    "language": check_language,
    "repeats": check_repeats,
}
# Run to the end, before the others and outside their cap: the safeguarding classifier
# embeds a draft in pieces (measured 0.05-0.45 s a draft on the shared 2-core machine,
# often more than the whole cap), and an unsafe draft must never go unflagged for that.
UNCAPPED_CHECKS = ("safety",)


_safety_loaded = threading.Event()


def _load_safety_classifier() -> None:
    """Load the safeguarding classifier's model and examples once per process, outside any
    draft's time (a failure is the check's to report: it then falls back on its lexicon)."""
    if _safety_loaded.is_set():
        return
    from tutor.safeguarding import classifier

    try:
        model = classifier.get_classifier()
        if hasattr(model, "warm_up"):
            model.warm_up()
    except Exception:  # noqa: BLE001
        log.exception("the safeguarding classifier could not be loaded for the draft checks")
    _safety_loaded.set()


def warm_up() -> None:
    """Load the detector, the safety classifier and SymPy's caches once, so that no draft
    pays for them."""
    _get_identifier()
    _load_safety_classifier()
    _get_identifier(_site_languages())
    run_checks(
        "15 % de 80 = 0,15 × 80 = 12. Think about 2x + 3 = 11, √2 ≈ 1.41 and 2 h = 120 min.",
        draft_context(question="Solve 2x + 3 = 11"),
        cap_ms=10_000,
    )


# One draft's checks at a time: they are CPU work under one interpreter lock, so drafts
# finishing together (a batch) would otherwise share the cap and each run out of it.
_running = threading.Lock()


def _run_check(name: str, text: str, context: DraftContext, result: dict) -> None:
    """One check into `result`; one that raised is "not checked" (a check never fails a draft)."""
    try:
        flags, details = DRAFT_CHECKS[name](text, context)
    except Exception:  # noqa: BLE001
        log.exception("the %s check failed on a draft", name)
        result["not_checked"].append(name)
        return
    result[name] = details
    result["flags"] += [f for f in flags if f not in result["flags"]]


def run_checks(text: str, context: DraftContext, *, cap_ms: float | None = None) -> dict:
    """Every check of DRAFT_CHECKS on `text`. Returns what the reply keeps in `checks`:
    {"flags": [...], "<check>": details, ..., "complete": bool, "ms": float, "cpu_ms":
    float, "uncapped_ms": float}.

    The UNCAPPED_CHECKS (safety) run first and to the end, in the caller's thread: a draft
    is never left unread for safety because maths took long ("uncapped_ms" is their wall
    time). The others run under a hard cap ("ms" is their wall time from when their turn
    came, "cpu_ms" the CPU time of their thread). A check that raised, or that the cap cut
    short, is listed in "not_checked" and adds no flag: the card then says it was not
    checked.
    """
    cap_s = (settings.TUTOR_CHECK_CAP_MS if cap_ms is None else cap_ms) / 1000
    # Loading the detector's and the classifier's models is once per process, not part of a draft's time.
    _get_identifier()
    _load_safety_classifier()
    result: dict = {"flags": [], "not_checked": [], "complete": True}
    uncapped_started = time.monotonic()
    for name in DRAFT_CHECKS:
        if name in UNCAPPED_CHECKS:
            _run_check(name, text, context, result)
    result["uncapped_ms"] = round((time.monotonic() - uncapped_started) * 1000, 2)
    capped = [name for name in DRAFT_CHECKS if name not in UNCAPPED_CHECKS]
    if not _running.acquire(timeout=max(1.0, cap_s * 20)):  # the checks of a whole batch ahead of it
        log.warning("draft checks skipped: earlier checks are still running")
        return result | {"not_checked": result["not_checked"] + capped, "complete": False, "ms": 0.0}
    started = time.monotonic()
    finished = threading.Event()

    def run():
        cpu = time.thread_time()
        try:
            for name in capped:
                if time.monotonic() - started > cap_s:
                    result["not_checked"].append(name)
                else:
                    _run_check(name, text, context, result)
            result["cpu_ms"] = round((time.thread_time() - cpu) * 1000, 2)
            finished.set()
        finally:
            _running.release()  # by the checks' own thread: a stuck check keeps the others waiting, capped

    # A thread of its own, so that the cap holds even if a check got stuck in SymPy.
    threading.Thread(target=run, name="draft-checks", daemon=True).start()
    if not finished.wait(cap_s):
        log.warning("draft checks cut at the %d ms cap", cap_s * 1000)
        snapshot = {k: v for k, v in dict(result).items()}
        done = [name for name in DRAFT_CHECKS if name in snapshot]
        return {
            "flags": list(snapshot["flags"]),
            **{name: snapshot[name] for name in done},
            "not_checked": [name for name in DRAFT_CHECKS if name not in done],
            "complete": False,
            "ms": round((time.monotonic() - started) * 1000, 2),
            "uncapped_ms": snapshot["uncapped_ms"],
        }
    maths = result.get("maths")
    result["complete"] = not result["not_checked"] and (maths is None or maths.get("complete", True))
    result["gives_answer"] = maths.get("gives_answer") if maths else None
    result["ms"] = round((time.monotonic() - started) * 1000, 2)
    return result


# --- The regenerate-once rule.

RETRY_FLAGS = (triage.WRONG_LANGUAGE, triage.REPEATS)


def retry_instruction(checks: dict, context: DraftContext) -> str:
    """The instruction for the one automatic new draft, or "" when none is needed."""
    parts = []
    if triage.WRONG_LANGUAGE in checks.get("flags", ()) and context.language:
        parts.append(language_instruction(context.language))
    if triage.REPEATS in checks.get("flags", ()):
        parts.append("Do not repeat the student's question, and never say the same thing twice.")
    return " ".join(parts)


def kept_text(text: str, checks: dict) -> str:
    """The draft cut at its loop (or without the echoed question), when it has one."""
    repeats = checks.get("repeats") or {}
    kept = repeats.get("kept")
    return kept if kept else text


# --- What the card says.


def summary(checks: dict | None) -> dict:
    """The card's line of what was checked, and each wrong statement with its right value,
    in the reader's language. {"line": "", "errors": []} when nothing was checked."""
    checks = checks or {}
    parts, errors = [], []
    maths = checks.get("maths")
    state = ""
    if "maths" in (checks.get("not_checked") or ()):
        parts.append(_("maths: not checked"))
        state = "unchecked"
    elif maths:
        checked, wrong, unchecked = maths.get("checked", 0), maths.get("wrong") or [], maths.get("unchecked", 0)
        for w in wrong:
            item = _("%(expr)s = %(expected)s, not %(found)s") % {
                "expr": w["shown"],
                "expected": w["expected"],
                "found": w["found"],
            }
            if w.get("context"):
                item += " " + _("(with %(solution)s)") % {"solution": w["context"]}
            errors.append(item)
        if wrong:
            parts.append(
                ngettext(
                    "maths: %(wrong)d of %(n)d statement wrong", "maths: %(wrong)d of %(n)d statements wrong", checked
                )
                % {"wrong": len(wrong), "n": checked}
            )
            state = "wrong"
        elif checked:
            parts.append(
                ngettext("maths: %(n)d statement checked ✓", "maths: %(n)d statements checked ✓", checked)
                % {"n": checked}
            )
            state = "ok"
        if unchecked or not maths.get("complete", True):
            parts.append(
                ngettext("%(n)d not checked", "%(n)d not checked", unchecked) % {"n": unchecked}
                if unchecked
                else _("the rest not checked (too long)")
            )
            state = state or "unchecked"
    language = checks.get("language") or {}
    if "language" in (checks.get("not_checked") or ()):
        parts.append(_("language: not checked"))
    elif language.get("expected"):
        expected = LANGUAGE_LABELS.get(language["expected"], language["expected"])
        found = language.get("found")
        if found is None:
            parts.append(_("language: not checked"))
        elif found == language["expected"]:
            parts.append(_("%(language)s ✓") % {"language": expected})
        else:
            names = {"found": str(LANGUAGE_LABELS.get(found, found)), "expected": str(expected)}
            if (get_language() or "").startswith("fr"):  # "écrit en anglais": no capital inside a French sentence
                names = {k: v.lower() for k, v in names.items()}
            parts.append(_("written in %(found)s, not %(expected)s") % names)
    retried = checks.get("retried")
    if retried:
        parts.append(_("new draft made automatically once"))
    # A safe draft adds nothing to the line (an unsafe one has its flag); one not read says so.
    if "safety" in (checks.get("not_checked") or ()):
        parts.insert(0, _("safety: not checked"))
        state = "wrong" if state == "wrong" else "unchecked"
    return {"line": " · ".join(str(p) for p in parts), "errors": errors, "state": state}
