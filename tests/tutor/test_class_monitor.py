"""The class monitor: every conversation of the class with its state and wait, live over
the review socket; a conversation's full history for the class's staff, each opening
audited; 404 for everyone else."""

from __future__ import annotations

from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.urls import reverse
from django.utils import timezone

from classrooms.models import AuditEntry, Classroom, Membership
from tests.tutor.helpers import ask, draft, socket
from tutor import services
from tutor.models import Message


def _asked_ago(reply: Message, minutes: int) -> None:
    at = timezone.now() - timedelta(minutes=minutes)
    Message.objects.filter(pk__in=[reply.pk, reply.in_reply_to_id]).update(created_at=at)


def test_the_monitor_shows_each_conversation_by_state_then_longest_wait(
    student, classmate, teacher, classroom, as_user
):
    answered = draft(ask(student, classroom, "What is a prime number?"))
    services.reply_approve(reviewer=teacher, reply=answered, text="Ask yourself: which numbers divide 7?")
    waiting_long = draft(ask(classmate, classroom, "How do I add fractions with different denominators?"))
    waiting_short = draft(ask(student, classroom, "What is the area of a circle?"))
    drafting = ask(classmate, classroom, "Why is the sky blue?")
    flagged = draft(ask(student, classroom, "Is 3 x 4 = 13?"))
    Message.objects.filter(pk=flagged.pk).update(checks={"flags": ["maths_error"]})
    _asked_ago(waiting_long, 30)
    _asked_ago(waiting_short, 2)

    page = as_user(teacher).get(reverse("class_monitor", args=[classroom.id]))
    assert page.status_code == 200
    rows = page.context["rows"]
    assert [r["conversation_id"] for r in rows] == [
        flagged.conversation_id,
        waiting_long.conversation_id,
        waiting_short.conversation_id,
        drafting.conversation_id,
        answered.conversation_id,
    ]
    assert [r["state"] for r in rows] == ["flagged", "in_review", "in_review", "drafting", "answered"]
    assert rows[1]["student"] == str(classmate) and rows[1]["question"].startswith("How do I add fractions")
    assert 29 * 60 <= rows[1]["wait_s"] <= 31 * 60 and rows[1]["waiting"]
    assert rows[1]["wait_text"] == "30 min"
    assert not rows[-1]["waiting"]
    # Never the draft: the monitor lists questions and states only.
    assert "DRAFT-CANARY" not in page.content.decode()

    flagged_only = as_user(teacher).get(reverse("class_monitor", args=[classroom.id]), {"flag": "maths_error"})
    assert [r["conversation_id"] for r in flagged_only.context["rows"]] == [flagged.conversation_id]


@pytest.mark.django_db(transaction=True)
async def test_the_monitor_updates_live(student, teacher, classroom, other_classroom):
    monitor = await socket("/ws/review/", teacher)
    assert (await monitor.connect())[0]
    await monitor.send_json_to({"type": "monitor", "classroom_id": classroom.id})
    first = await monitor.receive_json_from(timeout=5)
    assert first == {"type": "monitor", "classroom_id": classroom.id, "rows": []}

    reply = await sync_to_async(ask)(student, classroom, "How do I add fractions?")
    frame = await monitor.receive_json_from(timeout=5)
    assert frame["type"] == "monitor"
    assert [(r["conversation_id"], r["state"]) for r in frame["rows"]] == [(reply.conversation_id, "drafting")]

    await sync_to_async(draft)(reply)
    while (frame := await monitor.receive_json_from(timeout=5))["rows"][0]["state"] != "in_review":
        pass
    await sync_to_async(services.reply_approve)(reviewer=teacher, reply=reply, text="Find a common denominator.")
    while (frame := await monitor.receive_json_from(timeout=5))["rows"][0]["state"] != "answered":
        pass
    assert "DRAFT-CANARY" not in str(frame)

    # Another class's monitor: refused, nothing of it sent.
    await monitor.send_json_to({"type": "monitor", "classroom_id": other_classroom.id})
    refused = await monitor.receive_json_from(timeout=5)
    assert refused["type"] == "error" and refused["code"] == "not_found"
    await monitor.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_reviewer_who_leaves_the_class_stops_following_its_monitor(student, reviewer, classroom):
    from tutor import events

    monitor = await socket("/ws/review/", reviewer)
    assert (await monitor.connect())[0]
    await monitor.send_json_to({"type": "monitor", "classroom_id": classroom.id})
    await monitor.receive_json_from(timeout=5)
    await sync_to_async(lambda: Membership.objects.filter(user=reviewer).delete())()
    events.person_access_changed(reviewer.id)
    output = await monitor.receive_output(timeout=5)
    assert output["type"] == "websocket.close" and output["code"] == 4403


def test_each_opening_of_a_history_is_audited_and_shows_drafts_to_staff(student, teacher, reviewer, classroom, as_user):
    reply = draft(ask(student, classroom, "What is a prime number?"), "A prime has two divisors. DRAFT-CANARY")
    services.reply_approve(reviewer=teacher, reply=reply, text="Which numbers divide 7?")
    url = reverse("class_conversation", args=[classroom.id, reply.conversation_id])
    for person in (teacher, reviewer, teacher):
        page = as_user(person).get(url)
        assert page.status_code == 200
        html = page.content.decode()
        assert "What is a prime number?" in html and "Which numbers divide 7?" in html
        assert "DRAFT-CANARY" in html  # the staff see the model's draft, marked as theirs only
        assert "Edited, then approved" in html
    lines = AuditEntry.objects.filter(action="conversation.open").order_by("id")
    assert [(e.actor_id, e.subject_id, e.details["conversation_id"]) for e in lines] == [
        (teacher.id, student.id, reply.conversation_id),
        (reviewer.id, student.id, reply.conversation_id),
        (teacher.id, student.id, reply.conversation_id),
    ]
    assert all("prime" not in e.target for e in lines)  # no student text in the log
    # The student's own page never shows the draft.
    assert (
        "DRAFT-CANARY"
        not in as_user(student).get(reverse("conversation", args=[reply.conversation_id])).content.decode()
    )


def test_outsiders_students_other_teachers_and_other_schools_get_404(
    student,
    stranger_student,
    teacher,
    other_teacher,
    outsider,
    school_admin,
    other_admin,
    reviewer,
    classroom,
    other_classroom,
    as_user,
):
    reply = ask(student, classroom)
    stranger_reply = ask(stranger_student, other_classroom)
    foreign = Classroom.objects.create(school=other_admin.school, name="Foreign")
    Membership.objects.create(classroom=foreign, user=other_admin, role=Membership.Role.TEACHER)
    history = reverse("class_conversation", args=[classroom.id, reply.conversation_id])
    monitor = reverse("class_monitor", args=[classroom.id])
    for person in (student, stranger_student, other_teacher, outsider, school_admin, other_admin):
        assert as_user(person).get(history).status_code == 404, person
        assert as_user(person).get(monitor).status_code == 404, person
    # Another class's conversation id under this class's monitor: 404, even for its teacher.
    mixed = reverse("class_conversation", args=[classroom.id, stranger_reply.conversation_id])
    assert as_user(teacher).get(mixed).status_code == 404
    assert as_user(other_teacher).get(mixed).status_code == 404
    # A reviewer who left the class.
    assert as_user(reviewer).get(history).status_code == 200
    Membership.objects.filter(user=reviewer).delete()
    assert as_user(reviewer).get(history).status_code == 404
    assert AuditEntry.objects.filter(action="conversation.open").count() == 1  # only the one that was allowed
