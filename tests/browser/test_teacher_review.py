"""A teacher signs in, watches drafts arrive live in the review queue, and works through
it by keyboard alone: edit and approve, ask for a simpler draft, reject with their own
reply. The queue ends empty and the student has exactly what the teacher chose."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from tutor import services
from tutor.models import Message

pytestmark = [pytest.mark.e2e, pytest.mark.model, pytest.mark.django_db(transaction=True)]

EDITED = "Think of a pizza cut into 6 slices: how many slices is one half? And one third?"
OWN_REPLY = "Let's look at this together in class tomorrow."


def ask(student, classroom, text: str) -> Message:
    conversation = services.conversation_start(student=student, classroom=classroom)
    question, _ = services.question_ask(conversation=conversation, text=text)
    return question.reply


def wait_until(check, timeout: float = 240, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def test_teacher_reviews_drafts_live_by_keyboard_alone(session, browser_worker, student, teacher, classroom):
    me = session("teacher")
    page = me.page
    me.sign_in("teacher")

    # Reviewers land on their queue, empty for now.
    expect(page.get_by_role("heading", name="Review queue", level=1)).to_be_visible()
    expect(page.locator("#cards .empty")).to_contain_text("Nothing to review")
    me.check_accessibility("empty review queue")
    keyboard = page.keyboard

    # A question arrives: the draft appears live, streamed, then ready.
    first = ask(student, classroom, "How do I add 1/2 and 1/3?")
    card = page.locator(f'.card.review[data-id="{first.id}"]')
    expect(card).to_be_visible(timeout=30_000)
    expect(card.locator(".question-text")).to_have_text("How do I add 1/2 and 1/3?")
    expect(card).to_have_class("card review awaiting_review", timeout=240_000)
    expect(card.locator("textarea.draft")).not_to_have_value("")
    expect(page.locator("#queue-count")).to_have_text("1 draft to review")
    expect(page).to_have_title("(1) Review queue · School tutor")
    second = ask(student, classroom, "What is a prime number?")
    card2 = page.locator(f'.card.review[data-id="{second.id}"]')
    expect(card2).to_have_class("card review awaiting_review", timeout=240_000)
    expect(page.locator("#queue-count")).to_have_text("2 drafts to review")
    expect(page.locator("#queue-oldest")).to_contain_text("oldest waiting")
    me.check_accessibility("review queue with drafts")
    me.screenshot("teacher-queue-with-drafts")

    # J focuses the first card, E edits its draft in place, Ctrl+Enter approves.
    keyboard.press("j")
    expect(card).to_be_focused()
    keyboard.press("e")
    expect(card.locator("textarea.draft")).to_be_focused()
    keyboard.press("Control+a")
    keyboard.type(EDITED)
    keyboard.press("Control+Enter")
    expect(card).to_have_count(0)
    expect(card2).to_be_focused()  # focus moves on to the next draft
    first.refresh_from_db()
    assert (first.status, first.decision, first.final_text) == ("approved", "edited", EDITED)

    # G opens "regenerate"; a quick choice asks for a simpler draft, which arrives live.
    attempt = card2.get_attribute("data-attempt")
    keyboard.press("g")
    expect(card2.get_by_role("button", name="Simpler")).to_be_focused()
    keyboard.press("Enter")
    expect(card2).not_to_have_attribute("data-attempt", attempt)
    expect(card2).to_have_class("card review awaiting_review", timeout=240_000)
    second.refresh_from_db()
    assert second.regenerate_instruction == "Simpler, please."

    # R rejects, with the teacher's own reply; the queue is then empty.
    expect(card2).to_be_focused()
    keyboard.press("r")
    expect(card2.get_by_label("Your own reply instead (optional)")).to_be_focused()
    keyboard.type(OWN_REPLY)
    keyboard.press("Control+Enter")
    expect(page.locator(".card.review")).to_have_count(0)
    expect(page.locator("#cards .empty")).to_contain_text("Nothing to review")
    expect(page).to_have_title("Review queue · School tutor")
    second.refresh_from_db()
    assert (second.status, second.decision, second.final_text) == ("rejected", "teacher_reply", OWN_REPLY)

    me.check_accessibility("review queue emptied")
    me.screenshot("teacher-queue-empty")
