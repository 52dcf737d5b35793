"""A class's weekly opening hours in the school's time zone, and the teacher's pause switch:
outside them a student sees when it opens and cannot send, by page or socket; what was
already asked is still answered by a teacher."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from asgiref.sync import sync_to_async
from django.urls import reverse
from django.utils import timezone
from freezegun import freeze_time

from classrooms import schedule
from classrooms import services as classroom_services
from classrooms.models import Classroom
from tests.tutor.helpers import ask, draft, socket
from tutor import consumers, services

PARIS = ZoneInfo("Europe/Paris")


def set_hours(classroom, text: str) -> None:
    Classroom.objects.filter(pk=classroom.pk).update(opening_hours=schedule.parse(text))
    classroom.refresh_from_db()


def test_hours_are_wall_clock_time_across_the_change_to_summer_time(student, classroom):
    # Sunday 29 March 2026: Paris goes from UTC+1 to UTC+2 at 01:00 UTC.
    set_hours(classroom, "Mon-Fri 08:00-17:00")
    with freeze_time("2026-03-28 19:00:00"):  # Saturday 20:00 in Paris
        with pytest.raises(services.OutsideHours) as refused:
            ask(student, classroom)
        # Monday 08:00 summer time is 06:00 UTC (07:00 UTC if the offset of Saturday were kept).
        assert refused.value.opens_at == datetime(2026, 3, 30, 6, 0, tzinfo=ZoneInfo("UTC"))
        assert "Monday 30 March, 08:00" in refused.value.message
    with freeze_time("2026-03-30 05:59:00"):
        with pytest.raises(services.OutsideHours):
            ask(student, classroom)
    with freeze_time("2026-03-30 06:00:00"):  # 08:00 in Paris, summer time
        ask(student, classroom)


def test_hours_across_the_change_back_to_winter_time():
    # Sunday 25 October 2026: Paris goes back from UTC+2 to UTC+1 at 01:00 UTC.
    hours = schedule.parse("Sun 01:00-04:00\nMon 08:00-09:00")
    zone = PARIS
    with freeze_time("2026-10-25 01:30:00"):  # 02:30 winter time (the second 02:30)
        assert schedule.is_open(hours, datetime.now(tz=zone), zone)
    with freeze_time("2026-10-25 03:00:00"):  # 04:00 winter time: closed
        at = datetime.now(tz=zone)
        assert not schedule.is_open(hours, at, zone)
        assert schedule.next_opening(hours, at, zone) == datetime(2026, 10, 26, 7, 0, tzinfo=ZoneInfo("UTC"))


def test_hours_that_run_past_midnight_stay_open_into_the_next_day():
    hours = schedule.parse("ven 20h-01h")
    zone = PARIS
    friday_night = datetime(2026, 6, 5, 23, 30, tzinfo=zone)
    saturday_early = datetime(2026, 6, 6, 0, 59, tzinfo=zone)
    saturday_late = datetime(2026, 6, 6, 1, 0, tzinfo=zone)
    thursday_night = datetime(2026, 6, 4, 23, 30, tzinfo=zone)
    assert schedule.is_open(hours, friday_night, zone) and schedule.is_open(hours, saturday_early, zone)
    assert not schedule.is_open(hours, saturday_late, zone) and not schedule.is_open(hours, thursday_night, zone)
    assert schedule.next_opening(hours, saturday_late, zone) == datetime(2026, 6, 12, 20, 0, tzinfo=zone)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("Mon-Fri", "write the days, then the hours"),
        ("Funday 08:00-09:00", "is not a day"),
        ("Mon 08:00-25:00", "is not a time of day"),
        ("Mon 08:00-08:00", "opens and closes at the same time"),
    ],
)
def test_bad_hours_get_a_clear_form_error_and_change_nothing(teacher, classroom, as_user, text, error):
    response = as_user(teacher).post(reverse("teach_class_limits", args=[classroom.id]), {"opening_hours": text})
    assert response.status_code == 400 and error in response.content.decode()
    classroom.refresh_from_db()
    assert classroom.opening_hours == []


def test_a_teacher_sets_hours_and_reads_them_back(teacher, classroom, as_user):
    client = as_user(teacher)
    client.post(reverse("teach_class_limits", args=[classroom.id]), {"opening_hours": "lun-mar 8h-12h30"})
    classroom.refresh_from_db()
    assert schedule.as_text(classroom.opening_hours) == "Mon 08:00-12:30\nTue 08:00-12:30"
    assert "Tue 08:00-12:30" in client.get(reverse("teach_class", args=[classroom.id])).content.decode()


@freeze_time("2026-06-06 10:00:00")  # a Saturday
def test_outside_hours_the_chat_page_says_when_it_opens_and_cannot_send(student, classroom, as_user):
    reply = ask(student, classroom)
    set_hours(classroom, "Mon-Fri 08:00-17:00")
    page = as_user(student).get(reverse("conversation", args=[reply.conversation_id])).content.decode()
    assert "It opens again on Monday 8 June, 08:00." in page
    assert 'id="question" name="text" dir="auto" rows="1" maxlength="2000" required disabled' in page


@pytest.mark.django_db(transaction=True)
async def test_a_paused_class_refuses_a_question_sent_on_an_open_socket(student, teacher, classroom):
    reply = await sync_to_async(ask)(student, classroom)
    chat = await socket(f"/ws/chat/{reply.conversation_id}/", student)
    assert (await chat.connect())[0]
    await sync_to_async(classroom_services.classroom_pause_set)(actor=teacher, classroom=classroom, paused=True)
    await chat.send_json_to({"type": "ask", "text": "during the exam", "client_id": "c-1"})
    while (frame := await chat.receive_json_from(timeout=5))["type"] != "error":
        pass
    assert frame["code"] == "paused" and frame["client_id"] == "c-1" and "paused the tutor" in frame["message"]
    await chat.disconnect()
    asked = await sync_to_async(lambda: list(reply.conversation.messages.values_list("text", flat=True)))()
    assert "during the exam" not in asked


async def next_availability(chat) -> dict:
    while (frame := await chat.receive_json_from(timeout=10))["type"] != "availability":
        pass
    return frame


@pytest.mark.django_db(transaction=True)
async def test_an_open_chat_is_told_at_once_of_a_pause_and_of_the_reopening(
    student, teacher, classroom, stranger_student, other_classroom
):
    reply = await sync_to_async(ask)(student, classroom)
    elsewhere = await sync_to_async(ask)(stranger_student, other_classroom)
    chat = await socket(f"/ws/chat/{reply.conversation_id}/", student)
    other_chat = await socket(f"/ws/chat/{elsewhere.conversation_id}/", stranger_student)
    assert (await chat.connect())[0] and (await other_chat.connect())[0]
    await sync_to_async(classroom_services.classroom_pause_set)(actor=teacher, classroom=classroom, paused=True)
    assert "paused the tutor" in (await next_availability(chat))["closed"]
    await sync_to_async(classroom_services.classroom_pause_set)(actor=teacher, classroom=classroom, paused=False)
    assert (await next_availability(chat))["closed"] == ""
    # New hours that close the class now say when it opens.
    hours = schedule.parse("Sun 00:00-00:01")
    await sync_to_async(classroom_services.classroom_limits_set)(
        actor=teacher, classroom=classroom, per_hour=None, per_day=None, unanswered=None, opening_hours=hours
    )
    assert (await next_availability(chat))["closed"]
    assert await other_chat.receive_nothing(timeout=0.5)  # another class's chat hears nothing
    await chat.disconnect()
    await other_chat.disconnect()


def test_the_next_opening_or_closing_is_wall_clock_time_and_skips_contiguous_periods():
    hours = schedule.parse("Mon-Fri 08:00-12:00\nMon-Fri 12:00-17:00\nFri 20:00-01:00")
    utc = ZoneInfo("UTC")
    at = datetime(2026, 12, 2, 10, 0, tzinfo=PARIS)  # Wednesday, open
    assert schedule.next_change(hours, at, PARIS) == datetime(2026, 12, 2, 17, 0, tzinfo=PARIS)  # not 12:00
    friday_evening = datetime(2026, 12, 4, 18, 0, tzinfo=PARIS)
    assert schedule.next_change(hours, friday_evening, PARIS) == datetime(2026, 12, 4, 20, 0, tzinfo=PARIS)
    late = datetime(2026, 12, 4, 23, 0, tzinfo=PARIS)
    assert schedule.next_change(hours, late, PARIS) == datetime(2026, 12, 5, 1, 0, tzinfo=PARIS)  # past midnight
    # Saturday 28 March 2026, before summer time: Monday 08:00 is 06:00 UTC.
    saturday = datetime(2026, 3, 28, 20, 0, tzinfo=PARIS)
    assert schedule.next_change(hours, saturday, PARIS) == datetime(2026, 3, 30, 6, 0, tzinfo=utc)
    assert schedule.next_change([], at, PARIS) is None  # always open


@pytest.mark.django_db(transaction=True)
async def test_an_open_chat_is_told_when_the_hours_close_the_class(student, classroom, monkeypatch):
    reply = await sync_to_async(ask)(student, classroom)
    # Closed from now on; the consumer is told it changes in a moment rather than at a minute's end.
    await sync_to_async(set_hours)(classroom, "Sun 00:00-00:01")
    changes = []

    def soon(classroom, at=None):
        changes.append(classroom.pk)
        return timezone.now() + timedelta(seconds=0.2) if len(changes) < 3 else None

    monkeypatch.setattr(consumers, "classroom_availability_changes_at", soon)
    chat = await socket(f"/ws/chat/{reply.conversation_id}/", student)
    assert (await chat.connect())[0]
    first, second = await next_availability(chat), await next_availability(chat)
    assert first["closed"] and "opens again" in first["closed"] and second == first
    assert await chat.receive_nothing(timeout=2)  # no change ahead: nothing more
    assert changes == [classroom.pk] * 3  # each change, once told, times the next one
    await chat.disconnect()


def test_what_was_asked_before_the_pause_is_still_answered(student, teacher, classroom, as_user):
    reply = draft(ask(student, classroom))
    client = as_user(teacher)
    client.post(reverse("teach_class_pause", args=[classroom.id]), {"paused": "on"})
    classroom.refresh_from_db()
    assert classroom.paused
    assert "Open the tutor again" in client.get(reverse("teach_class", args=[classroom.id])).content.decode()
    with pytest.raises(services.TutorPaused):
        ask(student, classroom, text="during the exam")
    response = client.post(reverse("review_approve", args=[reply.id]), {"text": "Try 7 = 1 × 7."})
    assert response.status_code == 302
    reply.refresh_from_db()
    assert reply.status == "approved"
    client.post(reverse("teach_class_pause", args=[classroom.id]), {"paused": "off"})
    ask(student, classroom, text="after the exam")
    assert [e.action for e in classroom.school.audit_entries.filter(action__startswith="class.")][:2] == [
        "class.resumed",
        "class.paused",
    ]
