"""The drafting worker's start: load the model once, before taking any task, and tell the
heartbeat (tutor/workers.py) how far loading is, with an estimate of the seconds left.

The estimate comes from the earlier loads of the same model on this machine, cold (with
the one-time conversion) or warm, remembered in the model cache folder; before the first
one it is a rough guess from the file's size. It is shown to teachers and students as
"about N s", so it errs long: once loading takes longer than expected, it says a few
seconds more each time rather than zero.
"""

from __future__ import annotations

import json
import logging
import os
import time

from celery.signals import worker_init
from django.conf import settings

from inference.convert import cache_key, cache_root, needs_conversion, resolve_source
from inference.engine import ModelUnavailable, load_engine, mark_unloadable
from tutor import model_settings, workers
from tutor.selectors import MODEL_UNLOADABLE

log = logging.getLogger(__name__)

TIMES_FILE = "load-times.json"
GUESS_WARM_S = 15.0
GUESS_COLD_BASE_S = 30.0
GUESS_COLD_S_PER_MB = 1.0  # SmolLM2-135M (98 MB) measured 60-180 s cold on 2 busy cores
LATE_MARGIN_S = 10.0


def drafts_here() -> bool:
    """This process drafts (not the housekeeping worker, which loads no model)."""
    heartbeat = workers.current()
    return heartbeat is None or heartbeat.role == "drafting"


class LoadClock:
    """Expected loading time of the configured model, and what is left of it."""

    def __init__(self, config: dict):
        self.config = config
        self.started = time.monotonic()
        self.key, self.cold, size_mb = self._describe(config)
        self.store = cache_root(config.get("CACHE_DIR")) / TIMES_FILE
        remembered = self._known().get(self.key, {}).get("cold_s" if self.cold else "warm_s")
        if isinstance(remembered, int | float) and remembered > 0:
            self.expected = float(remembered)
        elif self.cold:
            self.expected = GUESS_COLD_BASE_S + GUESS_COLD_S_PER_MB * size_mb
        else:
            self.expected = GUESS_WARM_S

    @staticmethod
    def _describe(config: dict) -> tuple[str, bool, float]:
        if config.get("BACKEND", "transformers") != "transformers":
            return str(config.get("BACKEND")), False, 0.0
        try:
            source = resolve_source(config)
        except ModelUnavailable:
            return "unavailable", False, 0.0
        if source.gguf is None:
            return source.name, False, 0.0
        size_mb = source.gguf.stat().st_size / 1e6
        return f"{source.name}-{cache_key(source.gguf, config.get('CACHE_DIR'))}", needs_conversion(config), size_mb

    def _known(self) -> dict:
        try:
            known = json.loads(self.store.read_text())
        except (OSError, ValueError):
            return {}
        return known if isinstance(known, dict) else {}

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def seconds_left(self) -> float:
        return max(self.expected - self.elapsed(), LATE_MARGIN_S if self.elapsed() > self.expected else 1.0)

    def share_done(self) -> float:
        return min(0.95, self.elapsed() / self.expected) if self.expected else 0.0

    def remember(self, seconds: float) -> None:
        known = self._known()
        known.setdefault(self.key, {})["cold_s" if self.cold else "warm_s"] = round(seconds, 1)
        try:
            self.store.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.store.with_name(f".{self.store.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(known, indent=1))
            os.replace(tmp, self.store)
        except OSError:
            pass


@worker_init.connect
def load_model_before_taking_tasks(**kwargs) -> None:
    """Load the model once, before the worker takes any task. If it cannot be loaded, the
    worker stays up all the same: it takes its drafts and leaves each one owed, with the
    reason on the teacher's card (inference.engine.UnloadableEngine); its heartbeat says
    "unavailable", so /readyz does too. Once the model is fixed, a worker started again
    drafts them (the reconciler sends them again)."""
    if not drafts_here():
        return
    heartbeat = workers.current()
    key = model_settings.serving_model_key() or model_settings.default_model_key()
    config = model_settings.model_config(key) or settings.TUTOR_MODEL
    clock = LoadClock(config)
    if clock.cold:
        log.warning(
            "First start with this model file: converting it once (about %.0f s expected). "
            "`python -m inference.convert` does it at deploy time.",
            clock.expected,
        )

    def progress(phase: str, fraction: float | None = None) -> None:
        if heartbeat is not None:
            heartbeat.loading(phase=phase, progress=clock.share_done(), eta_s=clock.seconds_left())

    progress("converting" if clock.cold else "reading")
    try:
        engine = load_engine(key, progress=progress)
    except ModelUnavailable as exc:
        log.critical(
            "The tutor model %r cannot be loaded: %s. This worker stays up and leaves its drafts owed, "
            "with this reason on the teachers' cards; fix the model and start the worker again.",
            key,
            exc,
        )
        mark_unloadable(key, f"{MODEL_UNLOADABLE} {exc}")
        if heartbeat is not None:
            heartbeat.unavailable()
        return
    seconds = clock.elapsed()
    clock.remember(seconds)
    log.warning(
        "model %s (%s) ready in %.1f s (%s start)", key, engine.model_name, seconds, "cold" if clock.cold else "warm"
    )
    if heartbeat is not None:
        from inference.tasks import drafts_in_hand

        heartbeat.active = drafts_in_hand
        heartbeat.loaded(seconds)
