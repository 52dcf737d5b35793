"""The model behind a small interface.

This module imports neither torch nor transformers: the web process may import
it to read the types. The backend named in settings is imported on first use,
inside the worker.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol


class ModelUnavailable(RuntimeError):
    """The configured model cannot be loaded; the message says what to install or set."""


class DraftPostponed(RuntimeError):
    """The engine cannot draft now but may later (its server does not answer, is busy):
    the reply stays owed and is tried again. str() is a plain reason for the teacher."""


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


log = logging.getLogger(__name__)
_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def engine_for_config(config: dict, progress: Callable[[str, float | None], None] | None = None) -> Engine:
    """A new engine of the backend that `config` names (its BACKEND key). `progress` hears
    (phase, fraction or None) while an in-process model loads."""
    backend = config.get("BACKEND", "transformers")
    if backend == "fake":
        from inference.backends.fake import FakeEngine

        return FakeEngine(config)
    if backend == "transformers":
        return _in_process_engine(config, progress)
    if backend == "openai":
        from inference.backends.openai_backend import OpenAIEngine

        return OpenAIEngine(config)
    raise ModelUnavailable(f"Unknown model backend {backend!r}: use 'openai', 'transformers' or 'fake'.")


def _in_process_engine(config: dict, progress: Callable[[str, float | None], None] | None) -> Engine:
    """ENGINE "auto" (default): our fast Llama engine where it applies (bias-free Llama or
    Mistral with default RoPE), else transformers' generate() for any causal LM;
    "llama" or "generate" forces one."""
    choice = str(config.get("ENGINE") or "auto").lower()
    if choice not in ("auto", "llama", "generate"):
        raise ModelUnavailable(f"TUTOR_MODEL ENGINE={choice!r}: use 'auto', 'llama' or 'generate'.")
    if choice != "generate":
        try:
            from inference.backends.transformers_backend import NotThisEngine, TransformersEngine
        except ImportError as exc:
            raise ModelUnavailable(f"The in-process model needs torch and transformers: {exc}") from exc
        try:
            return TransformersEngine(config, progress=progress)
        except NotThisEngine as exc:
            if choice == "llama":
                raise
            log.info("%s Drafting with transformers' generate() instead.", exc)
    try:
        from inference.backends.hf_generate import GenerateEngine
    except ImportError as exc:
        raise ModelUnavailable(f"The in-process model needs torch and transformers: {exc}") from exc
    return GenerateEngine(config, progress=progress)


def load_engine(
    model_key: str | dict | None = None, progress: Callable[[str, float | None], None] | None = None
) -> Engine:
    """The engine of the model declared under `model_key` in settings.TUTOR_MODELS (None:
    the default model), loaded once per process and per key, and kept resident. Its
    drafts are counted in the metrics (MeasuredEngine). `progress`: see engine_for_config.

    A dict instead of a key is a model's config (tests): it becomes the default model's
    engine if that one is not loaded yet.
    """
    from tutor.model_settings import default_model_key, model_config

    config = model_key if isinstance(model_key, dict) else None
    key = default_model_key() if config is not None or not model_key else model_key
    with _lock:
        engine = _engines.get(key)
        if engine is None:
            inner = engine_for_config(config if config is not None else model_config(key), progress=progress)
            engine = _engines[key] = MeasuredEngine(inner, model_key=key)
        return engine


class MeasuredEngine:
    """An engine, with each finished draft's speed counted in the metrics (tokens per
    second and time to first token, per worker and model key: tutor/metrics.py)."""

    def __init__(self, engine: Engine, model_key: str):
        self.inner, self.model_key = engine, model_key

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def draft(self, job: DraftJob) -> Draft:
        draft = self.inner.draft(job)
        if not draft.cancelled:
            try:
                from tutor import metrics

                metrics.draft_generated(
                    model=self.model_key,
                    new_tokens=draft.new_tokens,
                    seconds=draft.seconds,
                    first_token_s=draft.first_token_s,
                )
            except Exception:  # figures are a courtesy: never lose a draft to them
                pass
        return draft


class UnloadableEngine:
    """Stands in for a model that cannot be loaded (ModelUnavailable at the worker's
    start), so that the worker stays up: every draft is postponed with the reason, the
    reply stays owed, and a worker started again once the model is fixed drafts it."""

    context_window = 2048

    def __init__(self, model_name: str, reason: str):
        self.model_name, self.reason = model_name, reason

    def count_tokens(self, messages: list[dict]) -> int:
        return sum(len(m.get("content") or "") for m in messages) // 3 + 1

    def draft(self, job: DraftJob) -> Draft:
        raise DraftPostponed(self.reason)


def mark_unloadable(model_key: str, reason: str) -> Engine:
    """From now on, this process's engine for `model_key` postpones every draft with
    `reason` (see UnloadableEngine)."""
    with _lock:
        engine = _engines[model_key] = MeasuredEngine(UnloadableEngine(model_key, reason), model_key=model_key)
        return engine


def reset_engine() -> None:
    """Forget the loaded engines (tests)."""
    with _lock:
        _engines.clear()
