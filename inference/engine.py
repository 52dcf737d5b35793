"""The model behind a small interface.

This module imports neither torch nor transformers: the web process may import
it to read the types. The backend named in settings is imported on first use,
inside the worker.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol


class ModelUnavailable(RuntimeError):
    """The configured model cannot be loaded; the message says what to install or set."""


@dataclass(frozen=True)
class DraftJob:
    """One reply to draft.

    messages: chat turns, [{"role": "system" | "user" | "assistant", "content": str}].
    on_text: called with the whole text so far as tokens arrive, in the caller's thread
        (a slow callback never stalls the batch).
    should_stop: polled, also in the caller's thread, while the job runs; True cancels it
        at the next decoding step and frees its slot.
    fairness_key: jobs sharing a key (one student) are admitted one at a time when others wait.
    """

    messages: list[dict]
    max_new_tokens: int
    on_text: Callable[[str], None] | None = None
    should_stop: Callable[[], bool] | None = None
    fairness_key: str = ""


@dataclass
class Draft:
    text: str
    model_name: str
    settings: dict = field(default_factory=dict)
    prompt_tokens: int = 0
    new_tokens: int = 0
    mean_token_prob: float | None = None
    cancelled: bool = False
    first_token_s: float | None = None
    seconds: float = 0.0


class Engine(Protocol):
    model_name: str
    context_window: int

    def count_tokens(self, messages: list[dict]) -> int: ...

    def draft(self, job: DraftJob) -> Draft:
        """Blocks until the draft is done. Thread-safe: concurrent calls are batched."""
        ...


_engine: Engine | None = None
_lock = threading.Lock()


def load_engine(config: dict | None = None, progress: Callable[[str, float | None], None] | None = None) -> Engine:
    """Load the configured backend once per process and keep it resident. `progress`
    hears (phase, fraction or None) while the first call loads it."""
    global _engine
    with _lock:
        if _engine is None:
            if config is None:
                from django.conf import settings

                config = settings.TUTOR_MODEL
            backend = config.get("BACKEND", "transformers")
            if backend == "fake":
                from inference.backends.fake import FakeEngine

                engine = FakeEngine(config)
            elif backend == "transformers":
                from inference.backends.transformers_backend import TransformersEngine

                engine = TransformersEngine(config, progress=progress)
            else:
                raise ModelUnavailable(f"Unknown TUTOR_MODEL backend {backend!r}: use 'transformers' or 'fake'.")
            _engine = MeasuredEngine(engine)
        return _engine


class MeasuredEngine:
    """The engine, with each finished draft's speed counted in the metrics (tokens per
    second and time to first token, per worker and model: tutor/metrics.py)."""

    def __init__(self, engine: Engine):
        self.inner = engine

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def draft(self, job: DraftJob) -> Draft:
        draft = self.inner.draft(job)
        if not draft.cancelled:
            try:
                from tutor import metrics

                metrics.draft_generated(
                    model=draft.model_name,
                    new_tokens=draft.new_tokens,
                    seconds=draft.seconds,
                    first_token_s=draft.first_token_s,
                )
            except Exception:  # figures are a courtesy: never lose a draft to them
                pass
        return draft


def reset_engine() -> None:
    """Forget the loaded engine (tests)."""
    global _engine
    with _lock:
        _engine = None
