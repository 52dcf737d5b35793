"""Honest waits: a student sees an estimate of their wait computed from the queue (numbers,
never text); teachers and admins see measured waits and review times per class."""

import json
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.urls import reverse
from django.utils import timezone

from tests.tutor.helpers import ask, draft, socket
from tutor import selectors, services
from tutor.models import Message

pytestmark = pytest.mark.django_db

CANARY = "WAIT-DRAFT-CANARY-4b1c"


def decided_with_review_time(student, teacher, classroom, seconds: float, text="A past question here"):
    reply = draft(ask(student, classroom, text))
    services.reply_claim(reply=reply, reviewer=teacher)
    Message.objects.filter(pk=reply.pk).update(review_opened_at=timezone.now() - timedelta(seconds=seconds))
    return services.reply_approve(reply=reply, reviewer=teacher)


def estimate(reply) -> int:
    reply = Message.objects.select_related("group").get(pk=reply.pk)
    return selectors.wait_estimate(reply, selectors.queue_snapshot(reply.conversation.classroom_id))


def test_the_estimate_grows_with_the_queue_ahead_and_the_review_time(student, classmate, teacher, classroom):
    decided_with_review_time(student, teacher, classroom, 10)
    first = draft(ask(classmate, classroom, "Question number one please"))
    assert estimate(first) == 10  # nothing ahead: its own review
    later = [draft(ask(classmate, classroom, f"Another question {n} here")) for n in range(2)]
    assert estimate(later[-1]) == 30  # two ahead, then its own


def test_more_active_reviewers_shorten_the_wait_and_an_open_draft_counts_half(
    student, classmate, teacher, co_teacher, classroom
):
    decided_with_review_time(student, teacher, classroom, 10)
    decided_with_review_time(student, co_teacher, classroom, 10, text="Another past question")
    replies = [draft(ask(classmate, classroom, f"Waiting question {n} here")) for n in range(3)]
    assert estimate(replies[2]) == 20  # two ahead shared by two reviewers, then its own
    services.reply_claim(reply=replies[0], reviewer=teacher)
    assert estimate(replies[2]) == 18  # 1.5 ahead / 2 reviewers x 10 s + 10 s


def test_a_question_still_being_drafted_adds_the_drafting_time(student, teacher, classroom):
    decided_with_review_time(student, teacher, classroom, 10)
    Message.objects.update(queued_at=timezone.now() - timedelta(seconds=5))  # its draft took 5 s
    queued = ask(student, classroom, "A brand new question here")
    assert estimate(queued) == 15


def test_a_group_member_waits_where_its_lead_is(student, classmate, teacher, classroom):
    decided_with_review_time(student, teacher, classroom, 10)
    draft(ask(student, classroom, "Something else entirely first"))
    lead = draft(ask(student, classroom, "What is a prime number?"))
    member = ask(classmate, classroom, "What is a prime number?")
    member.refresh_from_db()
    assert member.status == Message.Status.GROUPED
    assert estimate(member) == estimate(lead) == 20


def test_an_estimate_is_a_number_of_seconds_and_never_text(student, teacher, classroom):
    reply = draft(ask(student, classroom, "What is a prime number?"), text=CANARY)
    waits = selectors.wait_estimates(reply.conversation)
    assert waits == [{"reply_id": reply.pk, "seconds": waits[0]["seconds"]}]
    assert isinstance(waits[0]["seconds"], int) and CANARY not in json.dumps(waits)


@pytest.mark.django_db(transaction=True)
async def test_the_student_sees_their_wait_in_the_chat_and_it_updates_as_the_queue_moves(
    student, classmate, teacher, classroom
):
    ahead = await sync_to_async(lambda: draft(ask(classmate, classroom, "Question asked before mine"), text=CANARY))()
    conversation = await sync_to_async(services.conversation_start)(student=student, classroom=classroom)
    chat = await socket(f"/ws/chat/{conversation.id}/", student)
    assert (await chat.connect())[0]
    await chat.send_json_to({"type": "ask", "text": "My own question here", "client_id": "w1"})
    frame = await chat.receive_json_from(timeout=5)
    assert frame["type"] == "messages"
    [wait] = frame["wait"]
    mine = [m for m in frame["messages"] if m["sender"] == "tutor"][0]
    assert wait["reply_id"] == mine["id"] and wait["seconds"] > 0
    await sync_to_async(services.reply_approve)(reply=ahead, reviewer=teacher)
    seen = [frame]
    nudge = await next_of(chat, "wait", seen)
    assert nudge["wait"][0]["reply_id"] == mine["id"]
    await chat.send_json_to({"type": "wait"})
    await next_of(chat, "wait", seen)
    await chat.disconnect()
    assert CANARY not in json.dumps(seen)


async def next_of(chat, kind: str, seen: list) -> dict:
    """The next frame of this type (a "messages" nudge may come first); every frame is kept."""
    while True:
        frame = await chat.receive_json_from(timeout=5)
        seen.append(frame)
        if frame["type"] == kind:
            return frame


# Measured times, for the class's reviewers and the school's admins.


def test_teachers_see_their_classs_waits_and_review_times(student, teacher, classroom, as_user):
    for seconds in (4, 8, 30):
        decided_with_review_time(student, teacher, classroom, seconds, text=f"Past question {seconds} here")
    draft(ask(student, classroom, "Still waiting question"))
    response = as_user(teacher).get(reverse("review_stats"))
    assert response.status_code == 200
    [row] = response.json()["classes"]
    assert row["classroom_id"] == classroom.pk and row["answered"] == 3 and row["reviews"] == 3
    assert 8 <= row["review_p50_s"] < 9 and 30 <= row["review_p95_s"] < 31
    assert row["wait_p50_s"] is not None and row["wait_p95_s"] >= row["wait_p50_s"]
    assert row["pending_questions"] == 1 and row["pending_reviews"] == 1 and row["oldest_wait_s"] >= 0


def test_school_admins_see_every_class_of_their_school_only(
    student, teacher, classroom, other_classroom, school_admin, other_admin, as_user
):
    decided_with_review_time(student, teacher, classroom, 5)
    ids = [row["classroom_id"] for row in as_user(school_admin).get(reverse("review_stats")).json()["classes"]]
    assert sorted(ids) == sorted([classroom.pk, other_classroom.pk])
    assert as_user(other_admin).get(reverse("review_stats")).status_code == 403


def test_students_and_outsiders_see_no_stats_and_reviewers_see_their_classs(
    student, reviewer, outsider, other_teacher, classroom, as_user
):
    for person in (student, outsider):
        assert as_user(person).get(reverse("review_stats")).status_code == 403
    # Whoever may review the class sees how fast it is reviewed (classrooms_reviewed_by).
    rows = as_user(reviewer).get(reverse("review_stats")).json()["classes"]
    assert [row["classroom_id"] for row in rows] == [classroom.pk]
    rows = as_user(other_teacher).get(reverse("review_stats")).json()["classes"]
    assert classroom.pk not in [row["classroom_id"] for row in rows]


def test_the_queue_header_shows_pending_questions_reviews_and_the_oldest_wait(student, classmate, teacher, classroom):
    draft(ask(student, classroom, "What is a prime number?"))
    ask(classmate, classroom, "What is a prime number?")
    Message.objects.update(created_at=timezone.now() - timedelta(seconds=40))
    [row] = selectors.queue_header([classroom])
    assert row["pending_questions"] == 2 and row["pending_reviews"] == 1 and 40 <= row["oldest_wait_s"] < 45
