"""Celery tasks that draft replies. Thin: take ids, send a task that reached the wrong
model's workers on to its own, and hand the reply's model to the one drafting service
(tutor/drafting.py), which claims, drafts, checks and saves.

Pool: the worker runs Celery's `threads` pool (tutor/management/commands/worker.py
starts it; the model loads in inference/worker.py). Each task thread hands its job to
the one resident engine, whose decoding thread batches every job pending at the same
moment (continuous batching). Threads, not prefork: prefork forks after import, which would copy the model per child and cannot run
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

from inference import similarity, worker
from inference.engine import DraftJob, DraftPostponed, load_engine
from tutor import checks, drafting, model_settings, selectors, services

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = settings.TUTOR_DRAFT_SILENT_SECONDS / 4  # several beats before a draft counts as abandoned

_drafting: set[int] = set()  # reply ids this process is drafting now
_drafting_lock = threading.Lock()


@worker_init.connect
def start_drafting_helpers(**kwargs):
    """After this worker's model has loaded (inference/worker.py, connected first): the
    drafts' database heartbeat, and the similarity model in the background."""
    if not worker.drafts_here():
        return
    key = model_settings.serving_model_key() or model_settings.default_model_key()
    threading.Thread(target=_heartbeat_loop, name="draft-heartbeat", daemon=True).start()
    checks.warm_up()  # the language detector, the safety classifier, SymPy's caches: no draft waits for them
    if settings.TUTOR_GROUP_SIMILARITY > 0:
        if (model_settings.model_config(key) or {}).get("BACKEND") == "openai":
            # The similarity model runs on torch, which a server-backed worker never loads.
            log.warning("this worker does not load the similarity model: alike questions are grouped by their text")
        else:
            similarity.start_loading()  # in the background: drafts need not wait for it


def drafts_in_hand() -> int:
    """Drafts this process is working on now (its heartbeat reports them)."""
    with _drafting_lock:
        return len(_drafting)


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
    """A resident engine as tutor.drafting.DraftingEngine sees it: the one place where a
    drafting job for the model is made."""

    def __init__(self, engine, *, max_new_tokens: int):
        self.engine = engine
        self.model_name = engine.model_name
        self.context_window = engine.context_window
        self.max_new_tokens = max_new_tokens

    def count_tokens(self, messages: list[dict]) -> int:
        return self.engine.count_tokens(messages)

    def draft(self, *, messages, max_new_tokens, on_text, should_stop, fairness_key):
        try:
            return self.engine.draft(
                DraftJob(
                    messages=messages,
                    max_new_tokens=max_new_tokens,
                    on_text=on_text,
                    should_stop=should_stop,
                    fairness_key=fairness_key,
                )
            )
        except DraftPostponed as exc:
            raise drafting.ModelNotAnswering(str(exc)) from exc


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
    serving = model_settings.serving_model_key()
    model_key = selectors.draft_model_key(reply_id)
    if model_key is None:
        return "not owed"
    if serving and model_key != serving:
        # Sent to the wrong workers (an older queue): hand it to its model's own.
        return f"sent to the workers of {services.draft_send(reply_id=reply_id, attempt=attempt)}"
    model_key = serving or model_key
    model_limit = (model_settings.model_config(model_key) or {}).get("MAX_NEW_TOKENS") or 160
    with _drafting_lock:
        _drafting.add(reply_id)
    try:
        return drafting.draft_reply(
            reply_id=reply_id,
            attempt=attempt,
            engine=_ModelForDrafting(load_engine(model_key), max_new_tokens=model_limit),
            embedder=similarity.ready_embedder(),
        )
    finally:
        with _drafting_lock:
            _drafting.discard(reply_id)


@shared_task(name="inference.requeue_stuck_drafts", ignore_result=True)
def requeue_stuck_drafts() -> int:
    close_old_connections()
    return services.requeue_stuck_drafts()
