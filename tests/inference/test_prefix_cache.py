"""The class's instructions are computed once: a draft whose system prompt's keys and
values come from the cache is the same, token for token, as one computed from scratch.
On a tiny random-weight Llama built in the test (the fast engine's architecture). Seconds."""

from __future__ import annotations

import threading

import pytest

from inference.engine import DraftJob, engine_for_config

pytest.importorskip("torch")
from tests.inference.test_any_model import config  # noqa: E402
from tests.inference.tiny_models import build_model  # noqa: E402

# Longer than one 256-token prefill chunk: the cached part spans two chunks.
INSTRUCTIONS = "You are a patient tutor. " + " ".join(
    "Guide the student with questions instead of giving answers, then count seven, fourteen, twenty-one."
    for _ in range(5)
)


def job(question: str, **extra) -> DraftJob:
    return DraftJob(
        messages=[{"role": "system", "content": INSTRUCTIONS}, {"role": "user", "content": question}],
        max_new_tokens=24,
        **extra,
    )


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return build_model(tmp_path_factory.mktemp("prefix") / "llama", "llama")


def test_a_cached_prefix_draft_equals_an_uncached_one(folder):
    questions = ["What is seven times eight?", "Pourquoi les plantes ont-elles besoin de lumière ?"]
    plain = engine_for_config(config(folder, PREFIX_CACHE=0, STOP_REPEATS=False))
    cached = engine_for_config(config(folder, STOP_REPEATS=False))
    try:
        assert type(cached).__name__ == "TransformersEngine"
        prefix = cached._encode(job("x").messages[:1])
        assert len(prefix) > 256
        expected = [plain.draft(job(q)) for q in questions]
        assert plain.prefix_hits == 0
        first = cached.draft(job(questions[0]))  # computes the instructions and keeps them
        assert cached.prefix_hits == 0
        again = [cached.draft(job(q)) for q in questions]
        assert cached.prefix_hits == 2
        # Two drafts of the class at once, both from the cache.
        out: dict[int, object] = {}
        threads = [
            threading.Thread(target=lambda i=i: out.setdefault(i, cached.draft(job(questions[i], fairness_key=str(i)))))
            for i in range(2)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert cached.prefix_hits == 4
        for i, want in enumerate(expected):
            assert want.new_tokens > 0
            for got in (again[i], out[i]) + ((first,) if i == 0 else ()):
                assert (got.text, got.new_tokens) == (want.text, want.new_tokens)
    finally:
        plain.close()
        cached.close()
