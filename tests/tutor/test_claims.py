"""Several reviewers: a reviewer who opens a draft holds it for a short lease, so two
reviewers never read the same draft; the lease runs out when they walk away."""

from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.urls import reverse
from django.utils import timezone

from classrooms.models import Membership
from tests.conftest import make_person
from tests.tutor.helpers import ask, draft, socket
from tutor import selectors, services
from tutor.models import Message

pytestmark = pytest.mark.django_db


@pytest.fixture
def assistant(classroom):
    """A teaching assistant: may review the class's drafts, may not administer it."""
    user = make_person("assistant", classroom.school, first_name="Ada")
    Membership.objects.create(classroom=classroom, user=user, role=Membership.Role.REVIEWER)
    return user


def claim(client, reply):
    return client.post(reverse("review_claim", args=[reply.pk]), HTTP_ACCEPT="application/json")


def test_a_claimed_draft_shows_who_has_it_and_refuses_others(student, teacher, assistant, classroom, as_user):
    reply = draft(ask(student, classroom))
    response = claim(as_user(assistant), reply)
    assert response.status_code == 200
    assert response.json()["reply"]["claimed_by_me"] is True
    reply.refresh_from_db()
    assert reply.claimed_by == assistant and reply.review_opened_at is not None
    seen_by_teacher = selectors.reviewer_view(selectors.reply_for_reviewer(teacher, reply.pk), viewer=teacher)
    assert seen_by_teacher["claimed_by"] == "Ada" and seen_by_teacher["claimed_by_me"] is False
    refused = claim(as_user(teacher), reply)
    assert refused.status_code == 409
    assert refused.json()["code"] == "claimed" and refused.json()["claimed_by"] == "Ada"


def test_another_reviewer_cannot_decide_a_draft_someone_has_open(student, teacher, assistant, classroom, as_user):
    reply = draft(ask(student, classroom))
    services.reply_claim(reply=reply, reviewer=assistant)
    for route, data in (
        ("review_approve", {}),
        ("review_reject", {"text": "mine"}),
        ("review_regenerate", {"instruction": "simpler"}),
    ):
        response = as_user(teacher).post(reverse(route, args=[reply.pk]), data, HTTP_ACCEPT="application/json")
        assert response.status_code == 409, route
        assert "Ada" in response.json()["error"]
    reply.refresh_from_db()
    assert reply.status == Message.Status.AWAITING_REVIEW
    assert (
        as_user(assistant).post(reverse("review_approve", args=[reply.pk]), HTTP_ACCEPT="application/json").status_code
        == 200
    )


def test_renewing_keeps_the_opening_time_and_an_expired_lease_frees_the_draft(student, teacher, assistant, classroom):
    reply = draft(ask(student, classroom))
    services.reply_claim(reply=reply, reviewer=assistant)
    opened = Message.objects.get(pk=reply.pk).review_opened_at
    services.reply_claim(reply=reply, reviewer=assistant)
    assert Message.objects.get(pk=reply.pk).review_opened_at == opened
    # The assistant walked away: the lease runs out and the teacher may open it.
    Message.objects.filter(pk=reply.pk).update(claimed_until=timezone.now() - timedelta(seconds=1))
    assert selectors.reviewer_view(Message.objects.get(pk=reply.pk), viewer=teacher)["claimed_by"] == ""
    services.reply_claim(reply=reply, reviewer=teacher)
    reply.refresh_from_db()
    assert reply.claimed_by == teacher and reply.review_opened_at > opened


def test_releasing_lets_another_reviewer_open_it_at_once(student, teacher, assistant, classroom, as_user):
    reply = draft(ask(student, classroom))
    services.reply_claim(reply=reply, reviewer=assistant)
    response = as_user(assistant).post(reverse("review_claim", args=[reply.pk]), {"release": "1"})
    assert response.status_code == 200 and response.json()["reply"]["claimed_by"] == ""
    assert claim(as_user(teacher), reply).status_code == 200


def test_a_decision_records_how_long_the_draft_was_open(student, teacher, classroom):
    reply = draft(ask(student, classroom))
    services.reply_claim(reply=reply, reviewer=teacher)
    Message.objects.filter(pk=reply.pk).update(review_opened_at=timezone.now() - timedelta(seconds=12))
    services.reply_approve(reply=reply, reviewer=teacher)
    reply.refresh_from_db()
    assert 12 <= reply.review_seconds < 20
    assert reply.claimed_by is None and reply.claimed_until is None


def test_a_decision_without_opening_records_no_review_time(student, teacher, classroom):
    reply = draft(ask(student, classroom))
    services.reply_approve(reply=reply, reviewer=teacher)
    reply.refresh_from_db()
    assert reply.review_seconds is None


def test_a_decided_draft_cannot_be_claimed(student, teacher, classroom, as_user):
    reply = draft(ask(student, classroom))
    services.reply_approve(reply=reply, reviewer=teacher)
    response = claim(as_user(teacher), reply)
    assert response.status_code == 409 and "already decided" in response.json()["error"]


def test_claiming_a_groups_lead_holds_the_whole_group(student, classmate, teacher, assistant, classroom):
    lead = draft(ask(student, classroom, "What is a prime number?"))
    ask(classmate, classroom, "What is a prime number?")
    services.reply_claim(reply=lead, reviewer=assistant)
    with pytest.raises(services.ClaimConflict):
        services.reply_split(reply=lead, reviewer=teacher)
    with pytest.raises(services.ClaimConflict):
        services.reply_approve(reply=lead, reviewer=teacher)


def test_a_reviewer_sees_and_reviews_the_class_but_people_outside_cannot_claim(
    student, assistant, other_teacher, outsider, classmate, classroom, as_user
):
    reply = draft(ask(student, classroom))
    assert [r.pk for r in selectors.review_queue(assistant)] == [reply.pk]
    for person in (other_teacher, outsider, classmate, student):
        assert claim(as_user(person), reply).status_code == 404
    assert as_user(None).post(reverse("review_claim", args=[reply.pk])).status_code == 302
    reply.refresh_from_db()
    assert reply.claimed_by is None


@pytest.mark.django_db(transaction=True)
async def test_other_reviewers_see_the_claim_live(student, teacher, co_teacher, classroom):
    reply = await sync_to_async(lambda: draft(ask(student, classroom)))()
    review = await socket("/ws/review/", co_teacher)
    assert (await review.connect())[0]
    await review.send_json_to({"type": "sync"})
    queue = await review.receive_json_from(timeout=5)
    assert queue["type"] == "queue" and queue["replies"][0]["claimed_by"] == ""
    assert queue["classes"][0]["pending_reviews"] == 1
    await sync_to_async(services.reply_claim)(reply=reply, reviewer=teacher)
    frame = await review.receive_json_from(timeout=5)
    await review.disconnect()
    assert frame["type"] == "reply" and frame["reply"]["claimed_by"] == str(teacher)
    assert frame["reply"]["claimed_by_me"] is False
