"""The whole drafting path with the real model, on a handful of questions: the real
worker drafts, checks each draft before its card turns ready, regenerates at most once,
and every card carries its flags and what was checked, within the checks' time cap.

What the small embedded model writes cannot be known in advance; what must hold for any
text is asserted: the checks ran and finished, their flags are on the reviewer's card,
a flagged loop was cut, at most one automatic new draft was made."""

import time

import pytest
from django.conf import settings

from tests.processes import start_worker
from tutor import selectors, services, triage
from tutor.models import Message

pytestmark = [pytest.mark.e2e, pytest.mark.model, pytest.mark.django_db(transaction=True)]

QUESTIONS = ("What is 15% of 80?", "Combien font 7 fois 8 ?", "Résous l'équation 2x + 3 = 11")


@pytest.fixture(scope="module")
def real_worker(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        worker = start_worker("worker-draft-checks", timeout=600)
    yield worker
    worker.stop()


def test_real_drafts_are_checked_before_their_card_turns_ready(real_worker, student, classmate, teacher, classroom):
    replies = []
    for i, text in enumerate(QUESTIONS):
        asker = student if i < 2 else classmate  # at most three pending questions a student
        conversation = services.conversation_start(student=asker, classroom=classroom)
        question, _ = services.question_ask(conversation=conversation, text=text)
        replies.append(question.reply)
    deadline = time.monotonic() + 400
    while time.monotonic() < deadline:
        statuses = set(Message.objects.filter(pk__in=[r.pk for r in replies]).values_list("status", flat=True))
        if statuses <= {Message.Status.AWAITING_REVIEW, Message.Status.FAILED}:
            break
        time.sleep(1)
    for reply in replies:
        reply.refresh_from_db()
        assert reply.status == Message.Status.AWAITING_REVIEW, (reply.status, reply.failure)
        found = reply.checks
        assert {"maths", "language", "repeats"} <= set(found), found
        assert found["complete"] is True and found["ms"] <= settings.TUTOR_CHECK_CAP_MS
        assert sum(1 for d in reply.previous_drafts if d.get("automatic")) <= 1
        if triage.REPEATS in found["flags"]:
            assert reply.draft_text == found["repeats"]["kept"]  # cut at the loop
        view = selectors.reviewer_view(reply, viewer=teacher)
        codes = [f["code"] for f in view["flags"]]
        for code in found["flags"]:
            assert code in codes
        assert ("maths_error" in codes) == bool(found["maths"]["wrong"])
        if found["maths"]["checked"]:
            assert view["checks"]["line"].startswith("maths: ")
    french = replies[1].checks["language"]
    assert french["expected"] == "fr"
