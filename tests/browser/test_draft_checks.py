"""The teacher's queue in a real browser shows what the computer checked on live drafts:
a draft with wrong maths arrives flagged, with the right value on its card and sorted
before the others; its checks line says what was checked; and when the teacher mends
the draft, its flags follow the edited text.

The drafts are made by the worker's drafting service, in this process, with a scripted
model (the real model's text cannot be known in advance): they reach the browser the
way every draft does, through Redis and the real server."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.tutor.helpers import ScriptedModel
from tutor import drafting, services

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

WRONG = "15% of 80 is 0.15 * 80 = 10.15, so the answer is 10.15."
HINT = "Start with 10% of 80 = 8, then 5% of 80 = 4. What do you get when you add them?"


def ask(student, classroom, text):
    conversation = services.conversation_start(student=student, classroom=classroom)
    question, _ = services.question_ask(conversation=conversation, text=text)
    return question.reply


def test_live_drafts_show_the_checks_line_and_flags(session, student, classmate, teacher, classroom):
    me = session("teacher")
    page = me.page
    me.sign_in("teacher")
    expect(page.get_by_role("heading", name="Review queue", level=1)).to_be_visible()

    hint = ask(student, classroom, "How much is 15% of 80?")
    wrong = ask(classmate, classroom, "What is 15% of 80?")
    hint_card = page.locator(f'.card.review[data-id="{hint.id}"]')
    wrong_card = page.locator(f'.card.review[data-id="{wrong.id}"]')
    expect(hint_card).to_be_visible(timeout=30_000)
    expect(wrong_card).to_be_visible()
    assert drafting.draft_reply(reply_id=hint.id, attempt=0, engine=ScriptedModel(HINT)) == "drafted"
    assert drafting.draft_reply(reply_id=wrong.id, attempt=0, engine=ScriptedModel(WRONG)) == "drafted"

    # The wrong draft arrives flagged, with the right value, and moves to the top.
    expect(wrong_card).to_have_class("card review awaiting_review", timeout=30_000)
    expect(wrong_card.locator(".flags")).to_contain_text("Wrong maths")
    expect(wrong_card.locator(".checks-line")).to_contain_text("maths: 1 of 2 statements wrong")
    expect(wrong_card.locator(".maths-errors")).to_have_text("0.15 × 80 = 12, not 10.15")
    expect(hint_card.locator(".checks-line")).to_have_text(
        "Checked by the computer: maths: 2 statements checked ✓ · English ✓"
    )
    expect(hint_card.locator(".flags")).to_be_hidden()
    expect(page.locator(".card.review").first).to_have_attribute("data-id", str(wrong.id))
    me.check_accessibility("review queue with checked drafts")
    me.screenshot("teacher-queue-checked-drafts")

    # The teacher mends the draft: its flags now describe their text.
    wrong_card.locator("textarea.draft").fill("What is 0.15 × 80? Multiply 15 by 80 first, then divide by 100.")
    expect(wrong_card.locator(".flags")).to_be_hidden(timeout=10_000)
    expect(wrong_card.locator(".maths-errors")).to_be_hidden()
    wrong_card.locator("textarea.draft").fill("0.15 × 80 = 8")
    expect(wrong_card.locator(".maths-errors")).to_have_text("0.15 × 80 = 12, not 8", timeout=10_000)
    expect(wrong_card.locator(".flags")).to_contain_text("Wrong maths")

    # The same card in French for a French-speaking teacher.
    teacher.language = "fr"
    teacher.save()
    page.reload()
    expect(wrong_card.locator(".maths-errors")).to_have_text("0.15 × 80 = 12, et non 10.15")
    expect(wrong_card.locator(".flags")).to_contain_text("Calcul faux")
