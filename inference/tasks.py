"""Celery tasks that draft replies. Thin: take ids, check the database still owes the
work, draft, save with a conditional update.

Pool: the worker runs the `threads` pool (see inference/worker.py). Each task thread
hands its job to the one resident engine, whose decoding thread batches every job
pending at the same moment (continuous batching). Threads, not prefork: prefork forks
after import, which would copy the model per child and cannot run CUDA in a forked child
(celery#3402). Time limits need prefork, so the engine bounds each draft by its token
limit and the reconciler below catches the rest.
"""

from __future__ import annotations

import logging
import threading
import time

from celery import shared_task
from celery.signals import worker_init
from django.conf import settings
from django.db import DatabaseError, close_old_connections
from django.utils.translation import gettext_noop  # stored in English, shown translated

from inference import similarity
from inference.engine import DraftJob, DraftPostponed, ModelUnavailable, load_engine
from tutor import events, model_settings, selectors, services
from tutor.prompts import build_prompt, trim_to_words

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = settings.TUTOR_DRAFT_SILENT_SECONDS / 4  # several beats before a draft counts as abandoned
STOP_CHECK_SECONDS = 0.5

_drafting: set[int] = set()  # reply ids this process is drafting now
_drafting_lock = threading.Lock()


@worker_init.connect
def load_model_before_taking_tasks(**kwargs):
    """Load this worker's model once, before the worker takes any task; exit if it cannot."""
    started = time.monotonic()
    key = model_settings.serving_model_key() or model_settings.default_model_key()
    try:
        engine = load_engine(key)
    except ModelUnavailable as exc:
        log.critical("The tutor model %r cannot be loaded, so this worker stops: %s", key, exc)
        raise SystemExit(3) from exc  # MODEL_MISSING in tutor/management/commands/worker.py: not restarted
    log.warning("model %s (%s) ready in %.1f s", key, engine.model_name, time.monotonic() - started)
    threading.Thread(target=_heartbeat_loop, name="draft-heartbeat", daemon=True).start()
    if settings.TUTOR_GROUP_SIMILARITY > 0:
        if (model_settings.model_config(key) or {}).get("BACKEND") == "openai":
            # The similarity model runs on torch, which a server-backed worker never loads.
            log.warning("this worker does not load the similarity model: alike questions are grouped by their text")
        else:
            similarity.start_loading()  # in the background: drafts need not wait for it


def _heartbeat_loop():
    """Tell the database, every few seconds, which drafts this worker is alive for."""
    while True:
        time.sleep(HEARTBEAT_SECONDS)
        with _drafting_lock:
            ids = list(_drafting)
        if not ids:
            continue
        try:
            close_old_connections()
            services.drafts_heartbeat(reply_ids=ids)
        except Exception:  # the database may be restarting; the next beat tries again
            log.exception("heartbeat failed")


def _stop_checker(reply_id: int, attempt: int):
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


@shared_task(
    name="inference.draft_reply",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    # The database restarting: try again shortly (the claim below is idempotent).
    autoretry_for=(DatabaseError,),
    retry_backoff=1,
    retry_backoff_max=30,
    max_retries=20,
)
def draft_reply(reply_id: int, attempt: int) -> str:
    close_old_connections()
    serving = model_settings.serving_model_key()
    if serving and selectors.draft_model_key(reply_id) not in (None, serving):
        # Sent to the wrong workers (an older queue): hand it to its model's own.
        return f"sent to the workers of {services.draft_send(reply_id=reply_id, attempt=attempt)}"
    reply = services.draft_start(reply_id=reply_id, attempt=attempt)
    if reply is None:
        return "not owed"
    with _drafting_lock:
        _drafting.add(reply_id)
    try:
        if reply.question_key and not reply.group_opt_out and reply.group_id is None and _join_alike(reply, attempt):
            return "grouped"
        model_key = serving or selectors.reply_model_key(reply)
        engine = load_engine(model_key)
        max_words = reply.conversation.classroom.max_reply_words
        model_limit = (model_settings.model_config(model_key) or {}).get("MAX_NEW_TOKENS") or 160
        max_new_tokens = min(model_limit, _tokens_for_words(max_words))
        messages = build_prompt(
            reply, count_tokens=engine.count_tokens, max_prompt_tokens=engine.context_window - max_new_tokens
        )
        classroom_id = reply.conversation.classroom_id
        draft = engine.draft(
            DraftJob(
                messages=messages,
                max_new_tokens=max_new_tokens,
                on_text=lambda text: events.draft_progress(classroom_id, reply_id, attempt, text),
                should_stop=_stop_checker(reply_id, attempt),
                fairness_key=str(reply.conversation.student_id),
            )
        )
        close_old_connections()
        if draft.cancelled:
            return "cancelled"
        if not draft.text.strip():
            services.draft_fail(
                reply_id=reply_id, attempt=attempt, reason=gettext_noop("The model returned an empty draft.")
            )
            return "empty"
        text, trimmed = trim_to_words(draft.text, max_words)
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
            },
            mean_token_prob=draft.mean_token_prob,
        )
        return "drafted"
    except DraftPostponed as exc:
        # Its model server does not answer: the reply waits in the queue, with the reason
        # on the teachers' card, and the reconciler sends it again.
        log.warning("reply %s waits for its model: %s", reply_id, exc)
        close_old_connections()
        services.draft_postpone(reply_id=reply_id, attempt=attempt, reason=str(exc))
        return "postponed"
    except DatabaseError:
        # Claimed but not saved: the heartbeat stops, and the reconciler queues it again.
        log.exception("database unavailable while drafting reply %s", reply_id)
        return "database unavailable"
    except Exception as exc:
        log.exception("drafting reply %s failed", reply_id)
        close_old_connections()
        services.draft_fail(reply_id=reply_id, attempt=attempt, reason=f"{type(exc).__name__}: {exc}")
        return "failed"
    finally:
        with _drafting_lock:
            _drafting.discard(reply_id)


def _join_alike(reply, attempt: int) -> bool:
    """Before drafting: join a pending alike question of the class (then no draft is
    needed). Without the similarity model, only the same normal form groups."""
    embedder = similarity.ready_embedder()
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


def _tokens_for_words(words: int) -> int:
    """The generation limit for a reply of at most `words` words.

    Measured with SmolLM2's tokenizer: ~1.4 tokens a word in English, ~2.0 in French. Two
    tokens a word lets a French reply reach the limit; 16 more let the model finish its
    sentence, and trim_to_words then cuts at the last sentence end within the limit.
    """
    return max(32, words * 2 + 16)


@shared_task(name="inference.requeue_stuck_drafts", ignore_result=True)
def requeue_stuck_drafts() -> int:
    close_old_connections()
    return services.requeue_stuck_drafts()
