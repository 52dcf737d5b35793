"""A student signs in, opens a class, asks, waits while the teacher reviews, and reads
the approved reply as it arrives: Markdown, mathematics and code, with no reload."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from tutor import services
from tutor.models import Message

pytestmark = [pytest.mark.e2e, pytest.mark.model, pytest.mark.django_db(transaction=True)]

APPROVED = (
    "Good start! Write both fractions with the **same denominator**:\n\n"
    "$$\\frac{1}{2} + \\frac{1}{3} = \\frac{3}{6} + \\frac{2}{6}$$\n\n"
    "Then add the tops, like this:\n\n```\n3/6 + 2/6 = ?/6\n```\n\n"
    "What do you get for $3 + 2$?"
)


def wait_for_draft(question_text: str, timeout: float = 240) -> Message:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reply = Message.objects.filter(in_reply_to__text=question_text).first()
        if reply and reply.status in (Message.Status.AWAITING_REVIEW, Message.Status.FAILED):
            assert reply.status == Message.Status.AWAITING_REVIEW, reply.failure
            return reply
        time.sleep(0.3)
    raise AssertionError("the worker drafted no reply in time")


def test_student_asks_and_receives_the_approved_reply_live(session, browser_worker, student, teacher, classroom):
    me = session("student")
    page = me.page
    me.sign_in("student")

    # My classes -> the class -> a new conversation.
    expect(page.get_by_role("heading", name="My classes")).to_be_visible()
    me.check_accessibility("my classes")
    me.screenshot("student-my-classes")
    page.get_by_role("link", name=classroom.name).click()
    expect(page.get_by_role("heading", name=classroom.name)).to_be_visible()
    me.check_accessibility("class")
    me.screenshot("student-class")
    page.get_by_role("button", name="Ask a new question").click()
    question_box = page.get_by_label("Your question")
    expect(question_box).to_be_visible()
    expect(page.locator(".hint .katex")).to_be_visible()  # the hint's formula is rendered
    me.check_accessibility("new conversation")
    me.screenshot("student-new-conversation")
    page.evaluate("window.__sameDocument = true")

    # The question appears at once, then the "teacher is reviewing" state.
    question = "How do I add 1/2 and 1/3? I think it is $\\frac{2}{5}$."
    question_box.fill(question)
    question_box.press("Enter")
    mine = page.locator(".message.student").last
    expect(mine).to_be_visible(timeout=1_000)
    expect(mine).to_contain_text("How do I add 1/2 and 1/3?")
    expect(question_box).to_have_value("")
    expect(mine).to_have_class("message student sent")
    expect(mine.locator(".katex")).to_be_visible()  # the student's own maths, rendered
    waiting = page.locator(".message.tutor.reviewing")
    expect(waiting).to_contain_text("Your teacher is reviewing the answer")
    me.check_accessibility("waiting for the teacher")
    me.screenshot("student-waiting-for-teacher")

    # The model drafts; the student sees nothing of the draft.
    reply = wait_for_draft(question)
    assert reply.draft_text.strip()
    expect(waiting).to_be_visible()
    assert reply.draft_text.strip()[:40] not in page.content()

    # The teacher approves an edited reply: it arrives live, rendered.
    services.reply_approve(reply=reply, reviewer=teacher, text=APPROVED)
    answer = page.locator(".message.tutor.answered")
    expect(answer).to_contain_text("same denominator", timeout=10_000)
    expect(answer.locator("strong")).to_have_text("same denominator")
    expect(answer.locator(".katex-display")).to_be_visible()
    expect(answer.locator(".katex").last).to_be_visible()
    expect(answer.locator("pre code")).to_have_text("3/6 + 2/6 = ?/6\n")
    expect(page.locator(".message.tutor.reviewing")).to_have_count(0)
    assert page.evaluate("window.__sameDocument === true"), "the reply came without a reload"
    assert reply.draft_text.strip()[:40] not in page.content() or reply.draft_text.strip()[:40] in APPROVED

    me.check_accessibility("answered")
    me.screenshot("student-chat-answered")
    page.set_viewport_size({"width": 360, "height": 740})
    me.check_accessibility("answered, on a phone")
