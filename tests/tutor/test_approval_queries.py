"""The load path: what one approval costs the database, counted over the whole request
(session, access check, decision, audit line, and what is sent after commit)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from classrooms.models import Membership
from tests.conftest import make_person
from tests.tutor.helpers import ask, draft
from tutor.models import Message

QUESTION = "What is the area of a circle of radius 3?"


def approve_counting(client, reply, members=()) -> tuple[int, list[str]]:
    with CaptureQueriesContext(connection) as queries:
        response = client.post(
            reverse("review_approve", args=[reply.pk]),
            {"text": reply.draft_text, "members": ",".join(str(m.pk) for m in members)},
            HTTP_ACCEPT="application/json",
        )
    assert response.status_code == 200, response.content
    return len(queries), [q["sql"][:120] for q in queries.captured_queries]


@pytest.mark.django_db(transaction=True)  # real transactions: BEGIN/COMMIT and on-commit sends count
def test_one_approval_costs_at_most_eight_queries(student, teacher, classroom, as_user):
    reply = draft(ask(student, classroom))
    count, sql = approve_counting(as_user(teacher), reply)
    assert count <= 8, "\n".join(sql)
    reply.refresh_from_db()
    assert reply.status == Message.Status.APPROVED


@pytest.mark.django_db(transaction=True)
def test_a_groups_approval_costs_the_same_for_two_students_or_five(teacher, classroom, as_user):
    students = []
    for i in range(9):
        person = make_person(f"pupil{i}", classroom.school)
        Membership.objects.create(classroom=classroom, user=person, role=Membership.Role.STUDENT)
        students.append(person)
    counts = []
    for size, people in ((2, students[:2]), (5, students[2:7])):
        lead = draft(ask(people[0], classroom, f"{QUESTION} ({size})"))
        members = [ask(p, classroom, f"{QUESTION} ({size})") for p in people[1:]]
        assert all(Message.objects.get(pk=m.pk).status == Message.Status.GROUPED for m in members)
        count, sql = approve_counting(as_user(teacher), lead, members)
        counts.append(count)
        assert Message.objects.filter(pk__in=[m.pk for m in members], status="approved").count() == size - 1
    assert counts[0] == counts[1], counts
    assert counts[0] <= 12, counts
