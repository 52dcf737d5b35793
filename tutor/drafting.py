"""Drafting one reply, from the worker's claim to a card ready for review: the one service
the worker's task calls.

    claim → join an alike question's group (then no draft) → prompt → draft, streamed to
    the class's reviewers → checks (tutor/checks.py) → at most one automatic new draft
    when the first is in the wrong language or loops → save, with its checks and flags.

The model and the similarity embedder come in as arguments (tutor never imports
inference): `engine` is anything with the small interface of DraftingEngine below;
inference/tasks.py hands in the resident engine behind it. `_generate` is the only place
that calls the model.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from django.conf import settings
from django.db import DatabaseError, close_old_connections
from django.utils.translation import gettext_noop  # stored in English, shown translated

from tutor import checks, events, services
from tutor.models import Message
from tutor.prompts import build_prompt, trim_to_words

log = logging.getLogger(__name__)

STOP_CHECK_SECONDS = 0.5


class ModelNotAnswering(Exception):
    """The model's server does not answer now: the reply waits in the queue (with the
    reason on its card) and the reconciler sends it again."""


class DraftingEngine(Protocol):
    """What drafting needs of a model. `draft` blocks until the text is done and returns an
    object with text, model_name, settings, prompt_tokens, new_tokens, mean_token_prob,
    cancelled and seconds (inference.engine.Draft); it raises ModelNotAnswering when the
    model's server does not answer. `max_new_tokens` is the model's own cap."""

    model_name: str
    context_window: int
    max_new_tokens: int

    def count_tokens(self, messages: list[dict]) -> int: ...

    def draft(
        self,
        *,
        messages: list[dict],
        max_new_tokens: int,
        on_text: Callable[[str], None] | None,
        should_stop: Callable[[], bool] | None,
        fairness_key: str,
    ) -> Any: ...


class Embedder(Protocol):
    def embed(self, texts: list[str]) -> list[list[float]]: ...


def draft_reply(*, reply_id: int, attempt: int, engine: DraftingEngine, embedder: Embedder | None = None) -> str:
    """Draft reply `reply_id` for attempt `attempt`, if the database still owes it. Returns
    what happened: "not owed", "grouped", "cancelled", "empty", "drafted", "postponed"
    (the model's server does not answer), "failed" or "database unavailable" (claimed but
    not saved: the reconciler queues it again).

    Raises DatabaseError only from the claim itself, so that the task may retry it."""
    reply = services.draft_start(reply_id=reply_id, attempt=attempt)
    if reply is None:
        return "not owed"
    try:
        if reply.question_key and not reply.group_opt_out and reply.group_id is None:
            if _join_alike(reply, attempt, embedder):
                return "grouped"
        return _draft_and_check(reply, attempt, engine)
    except ModelNotAnswering as exc:
        log.warning("reply %s waits for its model: %s", reply_id, exc)
        close_old_connections()
        services.draft_postpone(reply_id=reply_id, attempt=attempt, reason=str(exc))
        return "postponed"
    except DatabaseError:
        log.exception("database unavailable while drafting reply %s", reply_id)
        return "database unavailable"
    except Exception as exc:
        log.exception("drafting reply %s failed", reply_id)
        close_old_connections()
        services.draft_fail(reply_id=reply_id, attempt=attempt, reason=f"{type(exc).__name__}: {exc}")
        return "failed"


def _draft_and_check(reply: Message, attempt: int, engine: DraftingEngine) -> str:
    reply_id = reply.pk
    max_words = reply.conversation.classroom.max_reply_words
    context = checks.context_for(reply)
    facts = context.facts() if settings.TUTOR_VERIFIED_FACTS else ""
    sources: list[int] = []  # the course passages the prompt quoted (tutor.material)
    draft = _generate(reply, attempt, engine, facts=facts, language=context.language, sources=sources)
    if draft.cancelled:
        return "cancelled"
    text, trimmed = trim_to_words(draft.text, max_words)
    found = checks.run_checks(text, context) if text else {}
    discarded = []
    instruction = checks.retry_instruction(found, context) if settings.TUTOR_AUTO_REGENERATE else ""
    if text and instruction:
        close_old_connections()
        retry_sources: list[int] = []
        retry = _generate(
            reply, attempt, engine, facts=facts, automatic=instruction, language=context.language, sources=retry_sources
        )
        if retry.cancelled:
            return "cancelled"
        retry_text, retry_trimmed = trim_to_words(retry.text, max_words)
        if retry_text:
            discarded.append(
                {
                    "text": text,
                    "model": draft.model_name,
                    "automatic": True,
                    "flags": found.get("flags", []),
                    "instruction": instruction,
                }
            )
            first_seconds = draft.seconds
            draft, text, trimmed, sources = retry, retry_text, retry_trimmed, retry_sources
            found = checks.run_checks(text, context)
            found["retried"] = [f for f in discarded[0]["flags"] if f in checks.RETRY_FLAGS]
            found["first_draft_seconds"] = round(first_seconds, 3)
    close_old_connections()
    if not text.strip():
        services.draft_fail(
            reply_id=reply_id, attempt=attempt, reason=gettext_noop("The model returned an empty draft.")
        )
        return "empty"
    # A loop still there after the retry: the teacher gets the draft cut at the loop, flagged.
    text = checks.kept_text(text, found) or text
    services.draft_finish(
        reply_id=reply_id,
        attempt=attempt,
        text=text,
        model_name=draft.model_name,
        generation_settings=draft.settings
        | {
            "prompt_tokens": draft.prompt_tokens,
            "new_tokens": draft.new_tokens,
            "seconds": round(draft.seconds, 3),
            "trimmed": trimmed,
            "facts": bool(facts),
            "sources": sources,
        },
        mean_token_prob=draft.mean_token_prob,
        checks=found,
        discarded=discarded,
    )
    return "drafted"


def _generate(
    reply: Message,
    attempt: int,
    engine: DraftingEngine,
    *,
    facts: str = "",
    automatic: str = "",
    language: str | None = None,
    sources: list[int] | None = None,
):
    """The one call to the model: the prompt, streamed progress, stop when unwanted.
    The ids of the course passages the prompt quoted are appended to `sources`."""
    max_words = reply.conversation.classroom.max_reply_words
    max_new_tokens = min(engine.max_new_tokens, tokens_for_words(max_words))
    messages = build_prompt(
        reply,
        count_tokens=engine.count_tokens,
        max_prompt_tokens=engine.context_window - max_new_tokens,
        facts=facts,
        automatic=automatic,
        language=language,
        sources=sources,
    )
    classroom_id, reply_id = reply.conversation.classroom_id, reply.pk
    return engine.draft(
        messages=messages,
        max_new_tokens=max_new_tokens,
        on_text=lambda text: events.draft_progress(classroom_id, reply_id, attempt, text),
        should_stop=_stop_checker(reply_id, attempt),
        fairness_key=str(reply.conversation.student_id),
    )


def _stop_checker(reply_id: int, attempt: int) -> Callable[[], bool]:
    """should_stop for the engine: asks the database at most every half second."""
    state = {"at": 0.0, "stop": False}

    def should_stop() -> bool:
        now = time.monotonic()
        if now - state["at"] >= STOP_CHECK_SECONDS:
            state["at"] = now
            try:
                state["stop"] = not services.draft_is_wanted(reply_id=reply_id, attempt=attempt)
            except Exception:
                close_old_connections()  # keep drafting; the database decides at the end
        return state["stop"]

    return should_stop


def _join_alike(reply: Message, attempt: int, embedder: Embedder | None) -> bool:
    """Before drafting: join a pending alike question of the class (then no draft is
    needed). Without the similarity model, only the same normal form groups."""
    vector = None
    if embedder is not None:
        try:
            vector = embedder.embed([reply.in_reply_to.text])[0]
        except Exception:  # grouping is an optimisation: draft it on its own
            log.exception("embedding the question of reply %s failed", reply.pk)
            embedder = None
    try:
        lead = services.reply_group_alike(
            reply_id=reply.pk,
            attempt=attempt,
            vector=vector,
            threshold=settings.TUTOR_GROUP_SIMILARITY,
            embed=embedder.embed if embedder is not None else None,
        )
    except DatabaseError:
        raise
    except Exception:
        log.exception("grouping reply %s failed; drafting it on its own", reply.pk)
        return False
    return lead is not None


def tokens_for_words(words: int) -> int:
    """The generation limit for a reply of at most `words` words.

    Measured with SmolLM2's tokenizer: ~1.4 tokens a word in English, ~2.0 in French. Two
    tokens a word lets a French reply reach the limit; 16 more let the model finish its
    sentence, and trim_to_words then cuts at the last sentence end within the limit.
    """
    return max(32, words * 2 + 16)
