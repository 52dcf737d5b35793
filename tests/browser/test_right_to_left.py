"""Right-to-left text in the live chat: the student's question as it appears, and the
approved reply as it arrives, each take their direction from their own text (dir="auto"),
so an Arabic question keeps its numbers in place."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from tutor import services
from tutor.models import Message

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

QUESTION = "ما هو حل المعادلة 2x + 3 = 11؟"


def wait_for_reply(conversation, timeout: float = 15) -> Message:
    deadline = time.monotonic() + timeout
    while True:
        reply = Message.objects.filter(conversation=conversation, sender="tutor").first()
        if reply is not None or time.monotonic() > deadline:
            assert reply is not None, "the question was shown but no reply was queued"
            return reply
        time.sleep(0.1)


def test_an_arabic_question_and_its_answer_read_right_to_left(session, student, teacher, classroom):
    me = session("student")
    page = me.page
    me.sign_in("student")
    conversation = services.conversation_start(student=student, classroom=classroom)
    page.goto(f"/conversations/{conversation.id}/")
    page.get_by_label("Your question").fill(QUESTION)
    page.get_by_label("Your question").press("Enter")
    mine = page.locator(".message.student .body").last
    expect(mine).to_contain_text("2x + 3 = 11")
    assert mine.evaluate("el => getComputedStyle(el).direction") == "rtl"

    # The page shows the question as it is sent; its reply row follows the server's answer.
    # The server queued it for the suite's worker, which may be drafting it already: the
    # teacher answers in their own words, which a pending reply takes at any stage.
    reply = wait_for_reply(conversation)
    services.reply_reject(reply=reply, reviewer=teacher, teacher_text="اطرح 3 من الطرفين: 2x = 8")
    answer = page.locator(".message.tutor.answered .body")
    expect(answer).to_contain_text("2x = 8", timeout=10_000)
    assert answer.evaluate("el => getComputedStyle(el).direction") == "rtl"
    assert page.locator(".message.tutor .who").evaluate("el => getComputedStyle(el).direction") == "ltr"
    me.check_accessibility("right-to-left conversation")
