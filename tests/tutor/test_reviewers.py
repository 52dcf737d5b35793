""" "May this person review this class's replies?" has one answer
(classrooms.selectors.classrooms_reviewed_by), which the queue, claims, decisions, stats
and the review socket all ask. The copies it replaced disagreed on a deactivated account."""

import pytest
from django.http import Http404
from django.urls import reverse

from classrooms.models import User
from classrooms.selectors import classrooms_reviewed_by
from tests.tutor.helpers import ask, draft
from tutor import selectors

pytestmark = pytest.mark.django_db


def everything_reviewable(person, reply) -> dict:
    try:
        found = selectors.reply_for_reviewer(person, reply.id).id
    except Http404:
        found = None
    return {
        "classes": [c.pk for c in classrooms_reviewed_by(person)],
        "queue": [r.pk for r in selectors.review_queue(person)],
        "reply": found,
        "stats": [c.pk for c in selectors.classrooms_with_stats_for(person)],
    }


def test_a_reviewer_reviews_and_sees_the_stats_of_their_class_only(student, stranger_student, reviewer, classroom):
    reply = draft(ask(student, classroom))
    draft(ask(stranger_student, stranger_student.memberships.get().classroom))
    assert everything_reviewable(reviewer, reply) == {
        "classes": [classroom.pk],
        "queue": [reply.pk],
        "reply": reply.pk,
        "stats": [classroom.pk],
    }


@pytest.mark.parametrize("person", ["teacher", "reviewer"])
def test_a_deactivated_account_reviews_nothing_even_through_a_stale_user_object(person, student, classroom, request):
    reviewer = request.getfixturevalue(person)
    reply = draft(ask(student, classroom))
    User.objects.filter(pk=reviewer.pk).update(is_active=False)  # a socket's user object still says active
    assert reviewer.is_active
    assert everything_reviewable(reviewer, reply) == {"classes": [], "queue": [], "reply": None, "stats": []}


def test_an_archived_class_is_reviewed_by_nobody(student, reviewer, classroom, as_user):
    reply = draft(ask(student, classroom))
    classroom.archived = True
    classroom.save()
    assert everything_reviewable(reviewer, reply) == {"classes": [], "queue": [], "reply": None, "stats": []}
    assert as_user(reviewer).post(reverse("review_approve", args=[reply.id])).status_code == 404
