"""Two teachers act on one draft at once: one wins, the other is told so plainly."""

import threading

import pytest
from django.db import connection
from django.urls import reverse

from tests.tutor.helpers import ask, draft
from tutor import services
from tutor.models import Message


@pytest.mark.django_db(transaction=True)
def test_two_teachers_approving_at_once_one_wins(student, teacher, co_teacher, classroom):
    reply = draft(ask(student, classroom))
    results: dict[str, object] = {}
    barrier = threading.Barrier(2)

    def act(person, text):
        try:
            barrier.wait()
            services.reply_approve(reply=Message.objects.get(pk=reply.pk), reviewer=person, text=text)
            results[person.username] = "won"
        except services.ReviewConflict as exc:
            results[person.username] = exc.message
        finally:
            connection.close()

    threads = [
        threading.Thread(target=act, args=(teacher, "from teacher")),
        threading.Thread(target=act, args=(co_teacher, "from co-teacher")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(v == "won" for v in results.values()) == [False, True]
    loser_message = next(v for v in results.values() if v != "won")
    reply.refresh_from_db()
    assert str(reply.reviewed_by) in loser_message and "already decided" in loser_message
    assert reply.final_text == f"from {'teacher' if reply.reviewed_by == teacher else 'co-teacher'}"


@pytest.mark.django_db
def test_a_late_reject_after_approval_is_refused_and_changes_nothing(student, teacher, co_teacher, classroom, as_user):
    reply = draft(ask(student, classroom))
    services.reply_approve(reply=reply, reviewer=teacher)
    response = as_user(co_teacher).post(
        reverse("review_reject", args=[reply.id]), {"text": "mine"}, HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 409
    assert "already decided" in response.json()["error"]
    reply.refresh_from_db()
    assert reply.status == "approved" and reply.final_text == reply.draft_text


@pytest.mark.django_db
def test_regenerate_keeps_the_old_draft_and_queues_a_new_attempt(student, teacher, classroom):
    reply = draft(ask(student, classroom), text="too hard")
    reply = services.reply_regenerate(reply=reply, reviewer=teacher, instruction="simpler")
    assert reply.status == "queued" and reply.draft_attempt == 1
    assert reply.previous_drafts[0]["text"] == "too hard"
    # A late copy of the old task does nothing.
    assert services.draft_start(reply_id=reply.id, attempt=0) is None
    assert services.draft_start(reply_id=reply.id, attempt=1) is not None
