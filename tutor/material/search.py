"""Finding a class's passages for a question: a hybrid of sentence embeddings (meaning,
across languages: tutor.embeddings) and BM25 keyword scores (bm25s), both in process.

The search is behind a small interface (PassageSearch), chosen by
settings.TUTOR_MATERIAL_SEARCH, so that a pgvector backend can come later. The in-process
one keeps, per class, the matrix of its passages' vectors and a BM25 index, rebuilt only
when the class's material changed (its key: the ready documents' ids, versions and
reading times), so a
prompt with 10,000 passages in the class costs one small query, one embedding, a matrix-vector
product and the BM25 scores (bench/grounding.py measures it).

Every search is for ONE class: the class id is the only way in, and the database query
filters on it; nothing of another class's material is ever in the same index.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from django.conf import settings
from django.utils.module_loading import import_string

from tutor import embeddings
from tutor.models import CourseDocument, CoursePassage

_WORD = re.compile(r"\w+", re.UNICODE)
DENSE_WEIGHT = 0.5  # of the fused ranks; the rest is BM25's
RRF_K = 60  # reciprocal rank fusion's constant (Cormack et al., 2009)


@dataclass(frozen=True)
class Hit:
    passage_id: int
    score: float  # the fused rank score
    similarity: float  # cosine of the question and the passage


class PassageSearch(Protocol):
    def search(self, *, classroom_id: int, query: str, k: int) -> list[Hit]: ...


def tokens(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if len(w) > 1 or w.isdigit()]


class _ClassIndex:
    def __init__(self, ids: np.ndarray, matrix: np.ndarray, texts: list[str]):
        import bm25s

        self.ids = ids
        self.matrix = matrix
        self.bm25 = bm25s.BM25()
        self.bm25.index([tokens(t) or ["\u2205"] for t in texts], show_progress=False)


class InProcessSearch:
    """Vectors and BM25 in this process, cached per class (at most CACHED_CLASSES)."""

    CACHED_CLASSES = 32

    def __init__(self):
        self._cache: OrderedDict[int, tuple[tuple, _ClassIndex]] = OrderedDict()
        self._lock = threading.Lock()

    def _index(self, classroom_id: int) -> _ClassIndex | None:
        # The key: the class's ready documents as they are now (at most a few dozen rows;
        # a replacement bumps version, a new reading indexed_at, a deletion drops a row).
        key = tuple(
            CourseDocument.objects.filter(classroom_id=classroom_id, status=CourseDocument.Status.READY)
            .order_by("id")
            .values_list("id", "version", "indexed_at")
        )
        if not key:
            return None
        with self._lock:
            cached = self._cache.get(classroom_id)
            if cached is not None and cached[0] == key:
                self._cache.move_to_end(classroom_id)
                return cached[1]
        ready = CoursePassage.objects.filter(classroom_id=classroom_id, document_id__in=[k[0] for k in key])
        rows = list(ready.order_by("id").values_list("id", "vector", "text"))
        if not rows:
            return None
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        matrix = np.frombuffer(b"".join(bytes(r[1]) for r in rows), dtype=np.float32).reshape(
            len(rows), embeddings.DIMENSIONS
        )
        index = _ClassIndex(ids, matrix, [r[2] for r in rows])
        with self._lock:
            self._cache[classroom_id] = (key, index)
            self._cache.move_to_end(classroom_id)
            while len(self._cache) > self.CACHED_CLASSES:
                self._cache.popitem(last=False)
        return index

    def search(self, *, classroom_id: int, query: str, k: int) -> list[Hit]:
        index = self._index(classroom_id)
        if index is None or not query.strip():
            return []
        dense = index.matrix @ embeddings.embed_queries([query])[0]
        words = tokens(query)
        keyword = index.bm25.get_scores(words) if words else np.zeros(len(index.ids), dtype=np.float32)
        # Reciprocal rank fusion: ranks, not raw scores, so that neither scale (cosines
        # bunched near 0.8, BM25 unbounded) drowns the other; a passage without any of the
        # question's words gets nothing from BM25.
        score = DENSE_WEIGHT / (RRF_K + _ranks(dense))
        score += np.where(keyword > 0, (1 - DENSE_WEIGHT) / (RRF_K + _ranks(keyword)), 0.0)
        order = np.argsort(-score)[:k]
        return [Hit(int(index.ids[i]), float(score[i]), float(dense[i])) for i in order]


def _ranks(scores: np.ndarray) -> np.ndarray:
    """1 for the highest score, 2 for the next..."""
    ranks = np.empty(len(scores), dtype=np.float64)
    ranks[np.argsort(-scores, kind="stable")] = np.arange(1, len(scores) + 1)
    return ranks


_search: PassageSearch | None = None


def passage_search() -> PassageSearch:
    """The deployment's search (settings.TUTOR_MATERIAL_SEARCH), one per process."""
    global _search
    if _search is None:
        _search = import_string(settings.TUTOR_MATERIAL_SEARCH)()
    return _search
