"""Drafts a teacher can trust: the worker's drafting service checks every draft before
its card turns ready — maths, the student's language, loops and echoes — regenerates
once by itself when the language or a loop is wrong, and the reviewer's socket, page and
JSON carry the flags and the checks line. An edit gets its flags recomputed.

The model here is a scripted stand-in behind the drafting service's engine interface
(tests/tutor/helpers.py): the real model runs the same path in tests/e2e/test_draft_checks_real_model.py."""

from __future__ import annotations

import threading
import time

import pytest
from asgiref.sync import sync_to_async
from django.urls import reverse

from tests.tutor.helpers import ScriptedModel, ask, draft, run_drafting, socket
from tutor import checks, drafting, selectors, services, triage
from tutor.models import Message

WRONG = "15% of 80 is 0.15 * 80 = 10.15, so the answer is 10.15."
RIGHT = "15% of 80 is 0.15 × 80 = 12. Can you see why we multiply by 0.15?"
HINT = "Start with 10% of 80 = 8, then 5% of 80 = 4. What do you get when you add them?"
ENGLISH = "To find a percentage of a number, turn the percentage into a decimal and multiply by it."
FRENCH = "Pour trouver un pourcentage d'un nombre, écris le pourcentage en décimal puis multiplie."


def codes(reply: Message, viewer) -> list[str]:
    return [f["code"] for f in selectors.reviewer_view(reply, viewer=viewer)["flags"]]


@pytest.mark.django_db
def test_a_wrong_calculation_is_flagged_with_the_right_value_on_the_card(student, teacher, classroom):
    reply = run_drafting(ask(student, classroom, "What is 15% of 80?"), ScriptedModel(WRONG))
    assert reply.draft_text == WRONG  # never changed behind the teacher's back
    view = selectors.reviewer_view(reply, viewer=teacher)
    assert [f["code"] for f in view["flags"]] == ["maths_error"]
    assert view["checks"]["errors"] == ["0.15 × 80 = 12, not 10.15"]
    assert view["checks"]["line"].startswith("maths: 1 of 2 statements wrong")
    ok = run_drafting(ask(student, classroom, "How much is 15% of 80?"), ScriptedModel(RIGHT))
    view = selectors.reviewer_view(ok, viewer=teacher)
    assert "maths_error" not in [f["code"] for f in view["flags"]]
    assert view["checks"]["line"].startswith("maths: 2 statements checked ✓")
    assert view["checks"]["errors"] == []


@pytest.mark.django_db
def test_gives_answer_is_decided_exactly_when_the_question_holds_an_exercise(student, teacher, classroom):
    states = run_drafting(ask(student, classroom, "Solve 2x + 3 = 11"), ScriptedModel("Subtract 3: 2x = 8, so x = 4."))
    assert codes(states, teacher) == ["gives_answer"]
    # "= 8." looks like an answer to the wording guess, but the exercise's value is not stated.
    assert triage.seems_to_give_answer("Subtract 3 from both sides: 2x = 8.")
    hint = run_drafting(
        ask(student, classroom, "Solve 2x + 3 = 11"), ScriptedModel("Subtract 3 from both sides: 2x = 8.")
    )
    assert codes(hint, teacher) == []


@pytest.mark.django_db
def test_a_wrong_language_draft_is_regenerated_once_then_flagged(student, teacher, classroom):
    question = "Comment trouver 15 % d'un nombre, s'il te plaît ?"
    model = ScriptedModel(ENGLISH, ENGLISH)
    reply = run_drafting(ask(student, classroom, question), model)
    assert len(model.prompts) == 2  # one automatic new draft, no more
    # Both prompts name the language, in English and in French; the new draft's says it
    # once more at the end, as the checks' automatic instruction.
    first, again = model.prompts[0][0]["content"], model.prompts[1][0]["content"]
    assert "Write the whole reply in French" in first and "Réponds uniquement en français." in first
    assert again.startswith(first) and again.endswith(checks.language_instruction("fr"))
    assert codes(reply, teacher) == ["wrong_language"]
    line = selectors.reviewer_view(reply, viewer=teacher)["checks"]["line"]
    assert "written in English, not French" in line and "new draft made automatically once" in line
    assert reply.previous_drafts[-1]["automatic"] is True and reply.previous_drafts[-1]["text"] == ENGLISH

    other = "Comment calculer 20 % du prix d'un livre, s'il te plaît ?"
    fixed = run_drafting(ask(student, classroom, other), ScriptedModel(ENGLISH, FRENCH))
    assert fixed.draft_text == FRENCH
    assert codes(fixed, teacher) == []
    assert "French ✓" in selectors.reviewer_view(fixed, viewer=teacher)["checks"]["line"]


@pytest.mark.django_db
def test_the_class_language_of_replies_wins_over_the_question(student, teacher, classroom):
    classroom.reply_language = "français"
    classroom.save()
    model = ScriptedModel(ENGLISH, FRENCH)
    reply = run_drafting(ask(student, classroom, "How do I find 15 percent of a number?"), model)
    assert len(model.prompts) == 2 and reply.draft_text == FRENCH and codes(reply, teacher) == []


@pytest.mark.django_db
def test_a_looping_draft_is_cut_regenerated_once_then_flagged(student, teacher, classroom):
    loop = "Seven times eight is 56. " + "12 " * 30
    model = ScriptedModel(loop, loop)
    reply = run_drafting(ask(student, classroom, "What is 7 times 8?"), model)
    assert len(model.prompts) == 2
    assert "never say the same thing twice" in model.prompts[1][0]["content"]
    assert reply.draft_text == "Seven times eight is 56. 12"  # cut where the loop begins
    assert codes(reply, teacher) == ["repeats"]

    fixed = run_drafting(
        ask(student, classroom, "How much is 7 times 8?"), ScriptedModel(loop, "Count 8 seven times: what do you get?")
    )
    assert fixed.draft_text == "Count 8 seven times: what do you get?" and codes(fixed, teacher) == []


def test_loops_and_echoes_are_found_and_cut():
    assert checks.find_repetition("12 12 12 12 12").kept == "12"
    said_twice = "A prime has two divisors. Think about 7. A prime has two divisors. Think."
    assert checks.find_repetition(said_twice).kept == "A prime has two divisors. Think about 7."
    echo = checks.find_repetition(
        "What is a prime number? A prime number has exactly two divisors.", "What is a prime number?"
    )
    assert echo.kind == "echo" and echo.kept == "A prime number has exactly two divisors."
    assert checks.find_repetition("Try 2, then 3, then 4: which ones divide 12?", "Which numbers divide 12?") is None
    assert checks.find_repetition("7 × 1 = 7, 7 × 2 = 14, 7 × 3 = 21.") is None


def test_the_language_is_told_only_when_there_is_enough_text():
    assert checks.detect_language(FRENCH)[0] == "fr"
    assert checks.detect_language(ENGLISH)[0] == "en"
    assert checks.detect_language("2 + 2 = 4 ?")[0] is None
    assert checks.expected_language(question="2+2?", student_language="fr") == "fr"
    assert checks.expected_language(question="2+2?") is None
    assert checks.language_code("Français") == "fr" and checks.language_code("Klingon") is None


def test_the_checks_hold_their_cap_and_say_not_checked(monkeypatch, settings):
    settings.TUTOR_CHECK_CAP_MS = 50
    stuck = threading.Event()

    def slow_maths(text, context):
        stuck.wait(60)
        return ["maths_error"], {}

    monkeypatch.setitem(checks.DRAFT_CHECKS, "maths", slow_maths)
    started = time.monotonic()
    found = checks.run_checks("3 + 4 = 8", checks.DraftContext())
    # Bounds far from both ends, so that a busy machine cannot make it flaky: a check that
    # would take a minute is cut, and the draft does not wait for it.
    assert time.monotonic() - started < 20
    stuck.set()
    assert found["complete"] is False and "maths" in found["not_checked"] and found["flags"] == []
    assert checks.summary(found)["line"].startswith("maths: not checked")


def test_a_crashing_check_never_fails_the_draft(monkeypatch):
    def broken(text, context):
        raise ZeroDivisionError

    monkeypatch.setitem(checks.DRAFT_CHECKS, "maths", broken)
    found = checks.run_checks("3 + 4 = 8", checks.DraftContext())
    assert found["not_checked"] == ["maths"] and "maths_error" not in found["flags"]


def test_the_safety_check_is_never_cut_by_the_cap(settings):
    settings.TUTOR_CHECK_CAP_MS = 0.001  # too short for any check
    found = checks.run_checks("Then you could jump off the bridge.", checks.DraftContext())
    assert found["safety"] == {"category": "self_harm"} and "safety" not in found["not_checked"]
    assert found["flags"] == ["unsafe_draft"] and found["complete"] is False


def test_a_draft_the_safety_check_could_not_read_says_so(monkeypatch):
    def broken(text, context):
        raise RuntimeError("the embedding engine crashed")

    monkeypatch.setitem(checks.DRAFT_CHECKS, "safety", broken)
    found = checks.run_checks("Which numbers divide 7?", checks.DraftContext())
    assert found["not_checked"] == ["safety"]
    assert checks.summary(found)["line"].startswith("safety: not checked")


@pytest.mark.django_db
def test_an_edit_recomputes_the_flags(as_user, student, teacher, classroom):
    reply = draft(ask(student, classroom, "What is 15% of 80?"), text=RIGHT)
    client = as_user(teacher)
    url = reverse("review_check", args=[reply.pk])
    edited = client.post(url, {"text": "0.15 × 80 = 8"}, HTTP_ACCEPT="application/json").json()["reply"]
    assert [f["code"] for f in edited["flags"]] == ["maths_error"]
    assert edited["checks"]["errors"] == ["0.15 × 80 = 12, not 8"]
    assert edited["words"] == 5
    mended = client.post(url, {"text": "What do you get for 0.15 × 80?"}, HTTP_ACCEPT="application/json").json()
    assert mended["reply"]["flags"] == [] and mended["reply"]["checks"]["errors"] == []
    reply.refresh_from_db()
    assert reply.draft_text == RIGHT  # checking an edit changes nothing
    assert as_user(student).post(url, {"text": "x"}).status_code == 404


@pytest.mark.django_db
def test_the_queue_puts_safety_first_then_maths_errors(student, classmate, teacher, classroom):
    first = run_drafting(ask(student, classroom, "What is 3 + 4?"), ScriptedModel("Count on from 3: what do you get?"))
    wrong = run_drafting(ask(classmate, classroom, "What is 15% of 80?"), ScriptedModel(WRONG))
    worried = draft(ask(classmate, classroom, "everyone at school laughs at me and they post my photos"), "I'm sorry.")
    urgent = draft(ask(student, classroom, "I want to kill myself. What is 2 + 2?"), text="Let's go slowly.")
    assert (urgent.safety_tier, worried.safety_tier, wrong.safety_tier) == (2, 1, 0)
    order = [urgent.pk, worried.pk, wrong.pk, first.pk]  # urgent, concern, wrong maths, the oldest
    queue = selectors.review_queue(teacher)
    assert [r.pk for r in queue] == order
    priorities = [selectors.reviewer_view(r, viewer=teacher)["priority"] for r in queue]
    assert priorities == sorted(priorities)  # what review.js sorts live cards by
    snapshot = selectors.queue_snapshot(classroom.pk)
    assert [u["id"] for u in snapshot.units] == order  # waits follow the same order


@pytest.mark.django_db(transaction=True)
async def test_the_reviewers_socket_carries_maths_error_with_the_right_value(student, teacher, classroom):
    wrong_reply = await sync_to_async(ask)(student, classroom, "What is 15% of 80?")
    right_reply = await sync_to_async(ask)(student, classroom, "How much is 15% of 80?")
    review = await socket("/ws/review/", teacher)
    assert (await review.connect())[0]
    await review.send_json_to({"type": "sync"})
    assert (await review.receive_json_from(timeout=5))["type"] == "queue"

    async def ready_frame(reply_id):
        while True:
            frame = await review.receive_json_from(timeout=10)
            if (
                frame["type"] == "reply"
                and frame["reply"]["id"] == reply_id
                and frame["reply"]["status"] == "awaiting_review"
            ):
                return frame["reply"]

    for reply, text in ((wrong_reply, WRONG), (right_reply, HINT)):
        await sync_to_async(drafting.draft_reply)(reply_id=reply.pk, attempt=0, engine=ScriptedModel(text))
    wrong_view, right_view = await ready_frame(wrong_reply.pk), await ready_frame(right_reply.pk)
    await review.disconnect()
    assert [f["code"] for f in wrong_view["flags"]] == ["maths_error"]
    assert wrong_view["checks"]["errors"] == ["0.15 × 80 = 12, not 10.15"]
    assert [f["code"] for f in right_view["flags"]] == []
    assert right_view["checks"]["line"] == "maths: 2 statements checked ✓ · English ✓"


def test_every_flag_has_a_label_and_a_place_in_the_order():
    assert set(triage.FLAG_ORDER) == set(triage.FLAG_LABELS)
    assert triage.FLAG_ORDER[:3] == ("distressed", "unsafe_draft", "maths_error")


@pytest.mark.django_db
def test_a_teachers_regenerate_forgets_the_old_checks(student, teacher, classroom):
    reply = run_drafting(ask(student, classroom, "What is 15% of 80?"), ScriptedModel(WRONG))
    assert reply.checks["flags"] == ["maths_error"]
    reply = services.reply_regenerate(reply=reply, reviewer=teacher)
    assert reply.checks == {}
