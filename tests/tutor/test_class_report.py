"""The class report: numbers from a hand-made week of questions, the same in the page and
the CSV; a clear empty report; 7 or 30 days only."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse
from django.utils import timezone

from classrooms.models import Classroom
from tutor import selectors
from tutor.models import Conversation, Message, QuestionGroup

D = Message.Decision


def _at(days_ago: int, hour: int) -> datetime:
    day = timezone.localdate() - timedelta(days=days_ago)
    return timezone.make_aware(datetime.combine(day, time(hour, 0)))


def _reply(conversation, *, asked, status, decision="", wait=None, review=None, flags=(), draft="A draft.", **extra):
    question = Message.objects.create(conversation=conversation, sender=Message.Sender.STUDENT, text="A question?")
    final = "The reply." if status == "approved" or decision == D.TEACHER_REPLY else ""
    reply = Message.objects.create(
        conversation=conversation,
        sender=Message.Sender.TUTOR,
        in_reply_to=question,
        status=status,
        decision=decision,
        draft_text=draft,
        final_text=final,
        checks={"flags": list(flags)},
        review_seconds=review,
        **extra,
    )
    reviewed_at = asked + timedelta(seconds=wait) if wait is not None else None
    Message.objects.filter(pk__in=[question.pk, reply.pk]).update(created_at=asked, reviewed_at=reviewed_at)
    return reply


@pytest.fixture
def week(student, classmate, classroom):
    """Seven questions this week, one three weeks ago: the figures are worked out by hand
    in test_the_report_numbers_match_a_hand_made_week."""
    a = Conversation.objects.create(classroom=classroom, student=student)
    b = Conversation.objects.create(classroom=classroom, student=classmate)
    _reply(a, asked=_at(1, 10), status="approved", decision=D.AS_DRAFTED, wait=60, review=10)
    _reply(a, asked=_at(1, 11), status="approved", decision=D.EDITED, wait=120, review=30, flags=["maths_error"])
    _reply(b, asked=_at(2, 9), status="rejected", decision=D.REJECTED, wait=300, review=20, flags=["wrong_language"])
    _reply(b, asked=_at(2, 10), status="rejected", decision=D.TEACHER_REPLY, wait=600, review=40, distressed=True)
    lead = _reply(a, asked=_at(2, 14), status="approved", decision=D.AS_DRAFTED, wait=200, review=50)
    member = _reply(b, asked=_at(2, 14), status="approved", decision=D.AS_DRAFTED, wait=210, draft="")
    group = QuestionGroup.objects.create(classroom=classroom, lead=lead)
    Message.objects.filter(pk__in=[lead.pk, member.pk]).update(group=group)
    _reply(a, asked=_at(0, 0), status="awaiting_review")  # today, still waiting
    _reply(b, asked=_at(20, 10), status="approved", decision=D.AS_DRAFTED, wait=30, review=5)


def test_the_report_numbers_match_a_hand_made_week(week, classroom):
    report = selectors.class_report(classroom, days=7)
    assert (report["questions"], report["answered"], report["reviews"], report["drafts"]) == (7, 6, 5, 6)
    # Waits 60 120 200 210 300 600: nearest rank p50 is the 3rd, p95 the 6th.
    assert (report["wait_p50_s"], report["wait_p95_s"]) == (200, 600)
    # Review times 10 20 30 40 50 (the group's member was not reviewed apart).
    assert (report["review_p50_s"], report["review_p95_s"]) == (30, 50)
    assert (report["edit_rate"], report["reject_rate"]) == (0.2, 0.4)
    assert (report["maths_error_rate"], report["wrong_language_rate"]) == (0.167, 0.167)
    assert report["distress_rate"] == 0.143
    assert report["grouped_share"] == 0.333
    per_day = {d["day"]: (d["questions"], d["answered"], d["wait_p50_s"]) for d in report["per_day"]}
    today = timezone.localdate()
    assert len(per_day) == 7
    assert per_day[today] == (1, 0, None)
    assert per_day[today - timedelta(days=1)] == (2, 2, 60)
    assert per_day[today - timedelta(days=2)] == (4, 4, 210)
    assert per_day[today - timedelta(days=3)] == (0, 0, None)
    month = selectors.class_report(classroom, days=30)
    assert (month["questions"], month["answered"], len(month["per_day"])) == (8, 7, 30)


def test_the_page_and_the_csv_say_the_same(week, teacher, classroom, as_user):
    page = as_user(teacher).get(reverse("class_report", args=[classroom.id]))
    html = page.content.decode()
    assert page.status_code == 200
    assert 'data-figure="questions">7<' in html and 'data-figure="wait_p50">3 min<' in html
    assert 'data-figure="edit_rate">20 %<' in html and 'data-figure="reject_rate">40 %<' in html
    assert 'data-figure="grouped_share">33 %<' in html and "<svg" in html
    assert "A question?" not in html  # numbers only
    link = reverse("class_report_csv", args=[classroom.id])
    assert f"{link}?days=7" in html
    export = as_user(teacher).get(link, {"days": "30"})
    assert export["Content-Type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(export.content.decode())))
    assert lines[0][:3] == ["day", "questions", "answered"] and len([r for r in lines[1:31]]) == 30
    totals = {r[0]: r[1] for r in lines[32:] if r}
    assert totals["questions"] == "8" and totals["answered"] == "7" and totals["edit_rate"] == "0.167"


def test_the_report_counts_days_in_the_schools_time_zone(student, classroom):
    """20:00 UTC on 1 December is still the 1st in Paris (the server's zone here) but
    already the 2nd in Nouméa (UTC+11): a school there sees the question on the 2nd."""
    conversation = Conversation.objects.create(classroom=classroom, student=student)
    asked = datetime(2026, 12, 1, 20, 0, tzinfo=ZoneInfo("UTC"))
    _reply(conversation, asked=asked, status="approved", decision=D.AS_DRAFTED, wait=60, review=10)
    now = datetime(2026, 12, 3, 0, 30, tzinfo=ZoneInfo("UTC"))

    def day_of_the_question(time_zone: str) -> date:
        classroom.school.time_zone = time_zone
        classroom.school.save(update_fields=["time_zone"])
        report = selectors.class_report(Classroom.objects.get(pk=classroom.pk), now=now)
        return next(d["day"] for d in report["per_day"] if d["questions"])

    assert day_of_the_question("Europe/Paris") == date(2026, 12, 1)
    assert day_of_the_question("Pacific/Noumea") == date(2026, 12, 2)


def test_a_class_with_no_questions_gets_a_clear_empty_report(teacher, classroom, as_user):
    page = as_user(teacher).get(reverse("class_report", args=[classroom.id]), {"days": "30"})
    html = page.content.decode()
    assert page.status_code == 200 and 'id="report-empty"' in html and "No questions in this period" in html
    assert "data-figure" not in html
    report = selectors.class_report(classroom, days=7)
    assert report["questions"] == 0 and report["wait_p50_s"] is None and report["edit_rate"] is None
    export = as_user(teacher).get(reverse("class_report_csv", args=[classroom.id]))
    assert export.status_code == 200 and export.content.decode().count("\n") == 1 + 7 + 1 + 1 + 14


def test_a_period_other_than_7_or_30_days_says_so(teacher, classroom, as_user):
    for bad in ("abc", "-3", "100000"):
        page = as_user(teacher).get(reverse("class_report", args=[classroom.id]), {"days": bad})
        assert page.status_code == 200 and page.context["report"]["days"] == 7
        assert "A report covers 7 or 30 days" in page.content.decode()


def test_the_report_and_the_monitor_speak_french(week, teacher, classroom, as_user):
    client = as_user(teacher)
    report = client.get(reverse("class_report", args=[classroom.id]), HTTP_ACCEPT_LANGUAGE="fr")
    html = report.content.decode()
    assert "Bilan de la classe" in html and "7 derniers jours" in html and "Brouillons refusés" in html
    monitor = client.get(reverse("class_monitor", args=[classroom.id]), HTTP_ACCEPT_LANGUAGE="fr")
    assert "Suivi de la classe" in monitor.content.decode() and "Dernière question" in monitor.content.decode()
    topics_page = client.get(reverse("class_topics", args=[classroom.id]), HTTP_ACCEPT_LANGUAGE="fr")
    assert "Là où les élèves bloquent" in topics_page.content.decode()
