"""Celery tasks that draft replies. Thin: take ids, hand the resident model to the one
drafting service (tutor/drafting.py), which claims, drafts, checks and saves.

Pool: the worker runs Celery's `threads` pool (tutor/management/commands/worker.py
starts it). Each task thread hands its job to the one resident engine, whose decoding
thread batches every job pending at the same moment (continuous batching). Threads, not
prefork: prefork forks after import, which would copy the model per child and cannot run
CUDA in a forked child (celery#3402). Time limits need prefork, so the engine bounds each
draft by its token limit and the reconciler below catches the rest.
"""

from __future__ import annotations

import logging
import threading
import time

from celery import shared_task
from celery.signals import worker_init
from django.conf import settings
from django.db import DatabaseError, close_old_connections

from inference import similarity
from inference.engine import DraftJob, ModelUnavailable, load_engine
from tutor import checks, drafting, services

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = settings.TUTOR_DRAFT_SILENT_SECONDS / 4  # several beats before a draft counts as abandoned

_drafting: set[int] = set()  # reply ids this process is drafting now
_drafting_lock = threading.Lock()


@worker_init.connect
def load_model_before_taking_tasks(**kwargs):
    """Load the model once, before the worker takes any task; exit if it cannot."""
    started = time.monotonic()
    try:
        engine = load_engine()
    except ModelUnavailable as exc:
        log.critical("The tutor model cannot be loaded, so this worker stops: %s", exc)
        raise SystemExit(3) from exc  # MODEL_MISSING in tutor/management/commands/worker.py: not restarted
    log.warning("model %s ready in %.1f s", engine.model_name, time.monotonic() - started)
    threading.Thread(target=_heartbeat_loop, name="draft-heartbeat", daemon=True).start()
    checks.warm_up()  # the language detector's model and SymPy's caches: no draft waits for them
    if settings.TUTOR_GROUP_SIMILARITY > 0:
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


class _ModelForDrafting:
    """The resident engine as tutor.drafting.DraftingEngine sees it: the one place where a
    drafting job for the model is made."""

    def __init__(self, engine):
        self.engine = engine
        self.model_name = engine.model_name
        self.context_window = engine.context_window

    def count_tokens(self, messages: list[dict]) -> int:
        return self.engine.count_tokens(messages)

    def draft(self, *, messages, max_new_tokens, on_text, should_stop, fairness_key):
        return self.engine.draft(
            DraftJob(
                messages=messages,
                max_new_tokens=max_new_tokens,
                on_text=on_text,
                should_stop=should_stop,
                fairness_key=fairness_key,
            )
        )


@shared_task(
    name="inference.draft_reply",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    # The database restarting: try again shortly (the claim is idempotent).
    autoretry_for=(DatabaseError,),
    retry_backoff=1,
    retry_backoff_max=30,
    max_retries=20,
)
def draft_reply(reply_id: int, attempt: int) -> str:
    close_old_connections()
    with _drafting_lock:
        _drafting.add(reply_id)
    try:
        return drafting.draft_reply(
            reply_id=reply_id,
            attempt=attempt,
            engine=_ModelForDrafting(load_engine()),
            embedder=similarity.ready_embedder(),
        )
    finally:
        with _drafting_lock:
            _drafting.discard(reply_id)


@shared_task(name="inference.requeue_stuck_drafts", ignore_result=True)
def requeue_stuck_drafts() -> int:
    close_old_connections()
    return services.requeue_stuck_drafts()
