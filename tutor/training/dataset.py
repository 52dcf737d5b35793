"""The export of a school's review decisions, in the formats training libraries read.

What each decided reply gives (the prompt is the chat the model continued, rebuilt by
the one prompt builder, tutor.prompts.build_prompt):

    decision        DPO (chosen / rejected)    KTO (completion, label)            SFT
    as_drafted      -                          draft, true                        draft
    edited          final / draft, if the      draft, false and final, true       final
                    edit is substantive        (if substantive; else final, true)
    teacher_reply   final / draft              draft, false and final, true       final
    rejected        -                          draft, false                       -

"Substantive": the texts differ once lower-cased, with punctuation and spacing ignored,
by at least SUBSTANTIVE_MIN_WORDS words (word-level Levenshtein distance) and by at
least SUBSTANTIVE_RATIO of the longer text's words. A fixed typo or an added comma is
not a preference between two answers; a rewritten sentence is.

Pseudonymised: the names and usernames of the school's people (students and staff),
e-mail addresses, links, handles and phone numbers are replaced in every text (usernames,
often ordinary words, not in the system message: the class's instructions and material)
(tutor.safeguarding.services.deidentify); rows carry no id of a person, conversation or
message, only the day of the decision and the drafting model's key. Retention is
honoured: a conversation past its school's retention period is left out even before the
hourly deletion removes it, and a deleted conversation is simply gone.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from classrooms.models import Classroom, School, User
from tutor import checks
from tutor.grouping import edit_distance
from tutor.models import Message
from tutor.prompts import build_prompt
from tutor.safeguarding.services import deidentify

SUBSTANTIVE_MIN_WORDS = 2
SUBSTANTIVE_RATIO = 0.1
# The prompt is rebuilt without the engine's tokenizer: about 4 characters a token, and
# the embedded model's budget (the draft's own prompt was cut to the same length or less).
PROMPT_TOKEN_BUDGET = 1536
FILES = ("dpo.jsonl", "kto.jsonl", "sft.jsonl")
SCHEMA = {
    "dpo.jsonl": '{"prompt": [{"role", "content"}...], "chosen": [{"role": "assistant", "content"}], '
    '"rejected": [{"role": "assistant", "content"}], "day", "model"}',
    "kto.jsonl": '{"prompt": [...], "completion": [{"role": "assistant", "content"}], "label": bool, "day", "model"}',
    "sft.jsonl": '{"messages": [...prompt, {"role": "assistant", "content"}], "day", "model"}',
}


class ExportRefused(Exception):
    """Said to the admin as it is (translated)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


_WORD = re.compile(r"\w+", re.UNICODE)


def normal_words(text: str) -> list[str]:
    """The words of a text, lower-cased, accents kept, punctuation and spacing dropped."""
    return _WORD.findall(unicodedata.normalize("NFC", text or "").casefold())


def word_edit_distance(a: str, b: str) -> int:
    """Levenshtein distance between the texts' words (normal_words)."""
    return edit_distance(normal_words(a), normal_words(b))


def word_edit_ratio(a: str, b: str) -> float:
    """word_edit_distance over the longer text's word count (0 same, 1 nothing shared)."""
    longest = max(len(normal_words(a)), len(normal_words(b)))
    return word_edit_distance(a, b) / longest if longest else 0.0


def is_substantive(draft: str, final: str) -> bool:
    distance = word_edit_distance(draft, final)
    longest = max(len(normal_words(draft)), len(normal_words(final)), 1)
    return distance >= SUBSTANTIVE_MIN_WORDS and distance / longest >= SUBSTANTIVE_RATIO


def names_of_school(school: School) -> tuple[list[str], list[str]]:
    """Every name a text of the school could carry: its people's first and last names,
    and apart, their usernames."""
    names: list[str] = []
    usernames: list[str] = []
    people = User.objects.filter(school=school) | User.objects.filter(memberships__classroom__school=school)
    for first, last, username in people.distinct().values_list("first_name", "last_name", "username"):
        names += [first, last, *first.split(), *last.split()]
        usernames.append(username)
    return names, usernames


def decided_replies(
    *, school: School, classroom: Classroom | None = None, since: date | None = None, until: date | None = None
) -> QuerySet[Message]:
    """The school's decided tutor replies that retention still keeps, oldest decision first."""
    cutoff = timezone.now() - timedelta(days=school.retention_days)
    replies = Message.objects.filter(
        sender=Message.Sender.TUTOR,
        conversation__classroom__school=school,
        conversation__updated_at__gte=cutoff,
        decision__in=Message.Decision.values,
        reviewed_at__isnull=False,
    ).exclude(draft_text="")
    if classroom is not None:
        replies = replies.filter(conversation__classroom=classroom)
    tz = timezone.get_current_timezone()
    if since is not None:
        replies = replies.filter(reviewed_at__gte=datetime.combine(since, time.min, tz))
    if until is not None:
        replies = replies.filter(reviewed_at__lt=datetime.combine(until + timedelta(days=1), time.min, tz))
    return replies.select_related("conversation__classroom", "conversation__student", "in_reply_to").order_by(
        "reviewed_at", "id"
    )


def _approx_tokens(messages: list[dict]) -> int:
    return sum(len(m["content"]) for m in messages) // 4 + 4 * len(messages)


@dataclass
class Export:
    rows: dict[str, list[dict]] = field(default_factory=lambda: {name: [] for name in FILES})
    decisions: Counter = field(default_factory=Counter)
    models: Counter = field(default_factory=Counter)
    first_day: str = ""
    last_day: str = ""
    scope: str = ""

    def jsonl(self, name: str) -> str:
        return "".join(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n" for row in self.rows[name])

    def sha256(self) -> str:
        """The dataset's hash: the fine-tune's run is named after it and its seed."""
        digest = hashlib.sha256()
        for name in FILES:
            digest.update(name.encode() + b"\0" + self.jsonl(name).encode())
        return digest.hexdigest()

    def card(self) -> dict:
        return {
            "name": "teacher review decisions",
            "scope": self.scope,
            "date_range": [self.first_day, self.last_day],
            "counts": {name: len(rows) for name, rows in self.rows.items()},
            "decisions": dict(sorted(self.decisions.items())),
            "drafting_models": dict(sorted(self.models.items())),
            "substantive_edit": {"min_words": SUBSTANTIVE_MIN_WORDS, "min_ratio": SUBSTANTIVE_RATIO},
            "schema": SCHEMA,
            "pseudonymisation": "names and usernames of the school's people, e-mail addresses, links, handles "
            "and phone numbers replaced (usernames not in the system message, where they may be ordinary words); "
            "no ids of people, conversations or messages",
            "sha256": self.sha256(),
        }

    def card_markdown(self) -> str:
        card = self.card()
        lines = [
            "# Dataset card: teachers' review decisions",
            "",
            f"- Scope: {card['scope']}",
            f"- Decisions from {card['date_range'][0] or '-'} to {card['date_range'][1] or '-'}",
            "- Rows: " + ", ".join(f"{n} {c}" for n, c in card["counts"].items()),
            "- Decisions: " + (", ".join(f"{d} {c}" for d, c in card["decisions"].items()) or "none"),
            "- Drafting models: " + (", ".join(f"{m} ({c})" for m, c in card["drafting_models"].items()) or "none"),
            f"- Substantive edit: at least {SUBSTANTIVE_MIN_WORDS} words and {SUBSTANTIVE_RATIO:.0%} of the words "
            "changed, ignoring case, punctuation and spacing",
            f"- Pseudonymisation: {card['pseudonymisation']}",
            f"- SHA-256: {card['sha256']}",
            "",
            "## Schema",
            "",
            *[f"- `{n}`: `{s}`" for n, s in SCHEMA.items()],
            "",
            "Rows are in the order of the decisions, oldest first (the evaluation holds out the last 20%).",
            "",
        ]
        return "\n".join(lines)


def export_reviews(
    *, school: School, classroom: Classroom | None = None, since: date | None = None, until: date | None = None
) -> Export:
    """The school's review decisions as DPO, KTO and SFT rows. Refused without the
    school's consent, or for a class of another school."""
    if not school.training_consent:
        raise ExportRefused(
            _("This school has not agreed to use its review decisions to improve its model: turn it on first.")
        )
    if classroom is not None and classroom.school_id != school.id:
        raise ExportRefused(_("This class belongs to another school."))
    names, usernames = names_of_school(school)
    export = Export(scope=f"{school.name}" + (f" / {classroom.name}" if classroom else ""))

    def clean(text: str, role: str = "") -> str:
        # A username is often an ordinary word ("student", "prof"): it is scrubbed where
        # people write (questions, drafts, teachers' texts), not in the system message (the
        # class's instructions and material), where people go by their names.
        return deidentify(text, names=names if role == "system" else names + usernames).strip()

    for reply in decided_replies(school=school, classroom=classroom, since=since, until=until).iterator():
        # The prompt as the worker built it for this draft, the reply's language included.
        prompt = build_prompt(
            reply,
            count_tokens=_approx_tokens,
            max_prompt_tokens=PROMPT_TOKEN_BUDGET,
            language=checks.reply_language(reply),
        )
        prompt = [{"role": m["role"], "content": clean(m["content"], m["role"])} for m in prompt]
        draft, final = clean(reply.draft_text), clean(reply.final_text)
        day = timezone.localdate(reply.reviewed_at).isoformat()
        extra = {"day": day, "model": reply.model_key or reply.model_name}

        def said(text: str) -> list[dict]:
            return [{"role": "assistant", "content": text}]

        def kto(text: str, label: bool, extra: dict = extra, prompt: list = prompt) -> None:
            export.rows["kto.jsonl"].append({"prompt": prompt, "completion": said(text), "label": label, **extra})

        decision = reply.decision
        if decision == Message.Decision.AS_DRAFTED:
            kto(draft, True)
        elif decision in (Message.Decision.EDITED, Message.Decision.TEACHER_REPLY):
            if decision == Message.Decision.TEACHER_REPLY or is_substantive(draft, final):
                export.rows["dpo.jsonl"].append(
                    {"prompt": prompt, "chosen": said(final), "rejected": said(draft), **extra}
                )
                kto(draft, False)
            kto(final, True)
        elif decision == Message.Decision.REJECTED:
            kto(draft, False)
        if decision != Message.Decision.REJECTED and (final or draft):
            export.rows["sft.jsonl"].append({"messages": prompt + said(final or draft), **extra})
        export.decisions[decision] += 1
        export.models[extra["model"]] += 1
        export.first_day = export.first_day or day
        export.last_day = day
    return export


def write_export(export: Export, folder: str) -> list[str]:
    """The three JSONL files, card.json and README.md (the card) in `folder`."""
    from pathlib import Path

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in FILES:
        (out / name).write_text(export.jsonl(name), encoding="utf-8")
        written.append(str(out / name))
    (out / "card.json").write_text(json.dumps(export.card(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (out / "README.md").write_text(export.card_markdown(), encoding="utf-8")
    return [*written, str(out / "card.json"), str(out / "README.md")]


def export_zip(export: Export) -> bytes:
    """The same files as write_export, in one zip (the admin's download)."""
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in FILES:
            archive.writestr(name, export.jsonl(name))
        archive.writestr("card.json", json.dumps(export.card(), indent=2, ensure_ascii=False) + "\n")
        archive.writestr("README.md", export.card_markdown())
    return buffer.getvalue()
