"""The building of the model's prompt: one function, used by every draft."""

from __future__ import annotations

import re
from collections.abc import Callable

from django.conf import settings

from classrooms.models import Classroom
from tutor.checks import language_instruction
from tutor.models import CoursePassage, Message
from tutor.selectors import student_visible_text

LANGUAGE_RULE = "Always answer in the same language as the student's last message."


VERIFIED_WORKING = (
    "Verified working, computed exactly by a calculator, for you the tutor (the student has not seen it; "
    "guide them towards it step by step): {facts}"
)


def tutor_instructions(
    classroom: Classroom, *, instruction: str = "", facts: str = "", automatic: str = "", language: str | None = None
) -> str:
    """The class's tutor, as its teachers set it, in one system message.

    `instruction` is the teacher's (a regenerate request); `automatic` the checks' one
    retry instruction (tutor.checks.retry_instruction); `facts` verified working for the
    question (tutor.checks.DraftContext.facts); `language` the code of the language the
    reply should be in, when the checks can tell it (DraftContext.language)."""
    parts = [classroom.tutor_instructions.strip()]
    if classroom.subject:
        parts.append(f"Subject: {classroom.subject}.")
    if classroom.level:
        parts.append(f"Students' level: {classroom.level}.")
    if classroom.reply_language:
        parts.append(f"Answer in {classroom.reply_language}.")
    elif language:
        parts.append(language_instruction(language))
    else:
        parts.append(LANGUAGE_RULE)
    parts.append(f"Keep each reply under {classroom.max_reply_words} words.")
    if facts:
        parts.append(VERIFIED_WORKING.format(facts=facts))
    if instruction:
        parts.append(f"The teacher asks for this reply: {instruction}")
    if automatic:
        parts.append(automatic)
    return "\n".join(p for p in parts if p)


COURSE_MATERIAL = (
    "Course material from this class's teacher, the passages closest to the question. Base your "
    "reply on them when they answer it, in the class's words; name the document and page you used, "
    "like (Chapter 2, p. 3). If they do not answer the question, say what you know without them."
)


def course_material(passages: list[CoursePassage]) -> str:
    """Passages of the class's material, marked as such, for the system message."""
    from tutor.material.selectors import where

    quoted = [f'[{p.document.name}, {where(p)}]\n"""{p.text}"""' for p in passages]
    return "\n".join([COURSE_MATERIAL, *quoted])


def build_prompt(
    reply: Message,
    *,
    count_tokens: Callable[[list[dict]], int],
    max_prompt_tokens: int,
    facts: str = "",
    automatic: str = "",
    language: str | None = None,
    sources: list[int] | None = None,
) -> list[dict]:
    """The chat the model continues to draft `reply` (`language`: see tutor_instructions).

    The class's instructions, the passages of THIS class's course material closest to the
    question (tutor.material: at most TUTOR_MATERIAL_PROMPT_SHARE of the budget, the
    least close dropped first), then this one conversation as its student saw it (their
    questions and the final texts of decided replies, never a draft), up to the question
    being answered; the oldest turns are dropped until it fits. The ids of the passages
    quoted are appended to `sources`, when given (the card shows them).

    A reply that alike questions of other students may share (it has a group key) is
    written from its question alone: nothing of one student's history can reach another.
    """
    from tutor.material.selectors import passages_for_question

    conversation = reply.conversation
    question = reply.in_reply_to
    instructions = tutor_instructions(
        conversation.classroom,
        instruction=reply.regenerate_instruction,
        facts=facts,
        automatic=automatic,
        language=language,
    )
    system = {"role": "system", "content": instructions}
    passages = passages_for_question(conversation.classroom_id, question.text)
    material_budget = int(max_prompt_tokens * settings.TUTOR_MATERIAL_PROMPT_SHARE)
    while passages:
        grounded = {"role": "system", "content": instructions + "\n\n" + course_material(passages)}
        if count_tokens([grounded]) <= material_budget:
            system = grounded
            break
        passages.pop()
    if sources is not None:
        sources.extend(p.pk for p in passages)
    turns: list[dict] = []
    earlier = (
        conversation.messages.filter(created_at__lte=question.created_at)
        .exclude(pk=reply.pk)
        .order_by("created_at", "id")
    )
    if reply.question_key:
        earlier = earlier.filter(pk=question.pk)
    for message in earlier:
        text = student_visible_text(message)
        if text is None:
            continue
        role = "user" if message.sender == Message.Sender.STUDENT else "assistant"
        if turns and turns[-1]["role"] == role:  # keep turns alternating: merge unanswered questions
            turns[-1] = {"role": role, "content": turns[-1]["content"] + "\n\n" + text}
        else:
            turns.append({"role": role, "content": text})
    while len(turns) > 1 and count_tokens([system, *turns]) > max_prompt_tokens:
        turns.pop(0)
        while turns and turns[0]["role"] != "user":
            turns.pop(0)
    if turns and count_tokens([system, *turns]) > max_prompt_tokens:
        # One very long question: keep its end, where the question usually is.
        budget_chars = max(200, max_prompt_tokens * 3)
        turns[-1] = {"role": "user", "content": turns[-1]["content"][-budget_chars:]}
    return [system, *turns]


# A sentence ends at . ! ? or … (before a space or the end, after any closing quote or
# bracket), or at a line break. "3.5" and "x.y" do not end a sentence.
_SENTENCE_END = re.compile(r"[.!?\u2026][\"')\]\u00bb*_]*(?=\s|$)|\n")


def trim_to_words(text: str, max_words: int) -> tuple[str, bool]:
    """The draft cut to at most `max_words` words, at the last sentence end within the
    limit (or at the limit, with an ellipsis, when no sentence ends early enough).
    Returns (text, trimmed)."""
    text = (text or "").strip()
    words = list(re.finditer(r"\S+", text))
    if len(words) <= max_words:
        return text, False
    head = text[: words[max_words - 1].end()]
    ends = [m.end() for m in _SENTENCE_END.finditer(head)]
    if ends and len(head[: ends[-1]].split()) >= max(1, max_words // 3):
        return head[: ends[-1]].strip(), True
    return head.rstrip(" ,;:-\u2013\u2014") + "\u2026", True
