"""A class's quotas per student, set by its teacher within the school admin's ceilings:
what the student has left, clear refusals, and two tabs that cannot beat them."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from classrooms.models import Classroom, School
from tests.tutor.helpers import ask, draft
from tutor import services
from tutor.models import Message


def set_quotas(classroom, **values):
    Classroom.objects.filter(pk=classroom.pk).update(**values)
    classroom.refresh_from_db()


def test_a_student_at_the_hourly_quota_is_told_when_they_can_ask_again(student, classroom):
    set_quotas(classroom, questions_per_hour=2)
    conversation = services.conversation_start(student=student, classroom=classroom)
    services.question_ask(conversation=conversation, text="one")
    services.question_ask(conversation=conversation, text="two")
    with pytest.raises(services.QuotaReached, match="2 questions in the last hour.*ask again at"):
        services.question_ask(conversation=conversation, text="three")
    assert conversation.messages.filter(sender="student").count() == 2  # nothing half-saved


def test_questions_older_than_an_hour_no_longer_count(student, classroom):
    set_quotas(classroom, questions_per_hour=1)
    conversation = services.conversation_start(student=student, classroom=classroom)
    question, _ = services.question_ask(conversation=conversation, text="one")
    Message.objects.filter(pk=question.pk).update(created_at=timezone.now() - timedelta(minutes=61))
    services.question_ask(conversation=conversation, text="two")


def test_the_daily_quota_refuses_until_tomorrow(student, classroom):
    set_quotas(classroom, questions_per_day=1)
    conversation = services.conversation_start(student=student, classroom=classroom)
    services.question_ask(conversation=conversation, text="one")
    with pytest.raises(services.QuotaReached, match="1 questions today.*tomorrow"):
        services.question_ask(conversation=conversation, text="two")


def test_unanswered_questions_count_until_a_teacher_answers(student, teacher, classroom):
    set_quotas(classroom, max_unanswered=1)
    reply = ask(student, classroom)
    with pytest.raises(services.QuotaReached, match="at most 1 unanswered"):
        ask(student, classroom, text="another")
    services.reply_approve(reply=draft(reply), reviewer=teacher)
    ask(student, classroom, text="another")  # answered: one may wait again


def test_a_lowered_school_ceiling_holds_a_class_whose_quota_was_higher(student, classroom):
    set_quotas(classroom, questions_per_hour=20)
    School.objects.filter(pk=classroom.school_id).update(ceiling_per_hour=1)
    classroom.refresh_from_db()
    ask(student, classroom)
    with pytest.raises(services.QuotaReached):
        ask(student, classroom, text="second")


def test_an_urgent_message_is_saved_whatever_the_quota(student, classroom):
    set_quotas(classroom, questions_per_hour=1)
    conversation = services.conversation_start(student=student, classroom=classroom)
    services.question_ask(conversation=conversation, text="one")
    question, created = services.question_ask(conversation=conversation, text="I want to kill myself tonight")
    assert created and question.reply.safety_tier >= 2


def test_the_chat_page_shows_what_is_left(student, classroom, as_user):
    set_quotas(classroom, questions_per_hour=5, questions_per_day=9)
    reply = ask(student, classroom)
    page = as_user(student).get(reverse("conversation", args=[reply.conversation_id])).content.decode()
    assert "Questions left: 4 this hour, 8 today" in page


@pytest.mark.django_db(transaction=True)
def test_two_tabs_asking_at_once_cannot_beat_the_quota(student, classroom, monkeypatch):
    """Real threads, each with its own connection: on PostgreSQL the student's row lock
    makes them take turns. Without it every tab reads "1 left" and saves. The count is
    held open a moment so that the tabs surely overlap."""
    import time

    from tutor import selectors

    def slow_allowance(*args, **kwargs):
        left = selectors.student_allowance(*args, **kwargs)
        time.sleep(0.3)
        return left

    monkeypatch.setattr(services, "student_allowance", slow_allowance)
    set_quotas(classroom, questions_per_hour=3, max_unanswered=3)
    conversation = services.conversation_start(student=student, classroom=classroom)
    services.question_ask(conversation=conversation, text="one")
    services.question_ask(conversation=conversation, text="two")
    tabs = 6
    barrier = threading.Barrier(tabs)
    results: list[str] = []

    def tab(n: int) -> None:
        try:
            barrier.wait()
            services.question_ask(conversation=conversation, text=f"tab {n}")
            results.append("saved")
        except services.QuotaReached as exc:
            results.append(exc.message)
        finally:
            connection.close()

    threads = [threading.Thread(target=tab, args=(n,)) for n in range(tabs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count("saved") == 1, results
    refusals = [r for r in results if r != "saved"]
    assert len(refusals) == tabs - 1 and all("last hour" in r or "unanswered" in r for r in refusals), results
    assert Message.objects.filter(conversation=conversation, sender="student").count() == 3


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("0", "use “Pause the tutor” instead"),
        ("-3", "1 or more"),
        ("100000", "Your school allows at most 30"),
        ("lots", "whole number"),
    ],
)
def test_bad_quotas_get_a_clear_form_error_and_change_nothing(teacher, classroom, as_user, value, error):
    response = as_user(teacher).post(
        reverse("teach_class_limits", args=[classroom.id]), {"per_hour": value, "per_day": "", "unanswered": ""}
    )
    assert response.status_code == 400
    assert error in response.content.decode()
    classroom.refresh_from_db()
    assert classroom.questions_per_hour is None


def test_a_teacher_sets_quotas_and_the_student_is_held_to_them(teacher, student, classroom, as_user):
    response = as_user(teacher).post(
        reverse("teach_class_limits", args=[classroom.id]),
        {"per_hour": "1", "per_day": "", "unanswered": "2", "opening_hours": ""},
    )
    assert response.status_code == 302
    classroom.refresh_from_db()
    assert (classroom.questions_per_hour, classroom.questions_per_day, classroom.max_unanswered) == (1, None, 2)
    ask(student, classroom)
    with pytest.raises(services.QuotaReached):
        ask(student, classroom, text="again")


def test_a_school_admin_sets_the_ceilings(school_admin, school, as_user):
    client = as_user(school_admin)
    bad = client.post(
        reverse("school_settings"),
        {"retention_days": "365", "per_hour": "0", "per_day": "50", "unanswered": "4", "time_zone": "Mars/Olympus"},
    )
    assert "1 or more" in bad.content.decode() and "is not a time zone" in bad.content.decode()
    ok = client.post(
        reverse("school_settings"),
        {
            "retention_days": "365",
            "per_hour": "12",
            "per_day": "50",
            "unanswered": "4",
            "time_zone": "America/Montreal",
        },
    )
    assert ok.status_code == 302
    school.refresh_from_db()
    assert (school.ceiling_per_hour, school.ceiling_per_day, school.ceiling_unanswered) == (12, 50, 4)
    assert school.time_zone == "America/Montreal"


@pytest.mark.django_db(transaction=True)
async def test_the_socket_tells_the_student_what_is_left_after_each_question(student, classroom):
    from asgiref.sync import sync_to_async

    from tests.tutor.helpers import socket

    await sync_to_async(set_quotas)(classroom, questions_per_hour=5, questions_per_day=9)
    conversation = await sync_to_async(services.conversation_start)(student=student, classroom=classroom)
    chat = await socket(f"/ws/chat/{conversation.id}/", student)
    assert (await chat.connect())[0]
    await chat.send_json_to({"type": "ask", "text": "What is a fraction?", "client_id": "c-1"})
    while (frame := await chat.receive_json_from(timeout=5))["type"] != "allowance":
        pass
    assert (frame["hour_left"], frame["day_left"]) == (4, 8)
    await chat.disconnect()
