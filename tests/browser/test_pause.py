"""A student's open chat learns of the teacher's pause at once: the page says why they
cannot ask and stops the composer; when the teacher opens the tutor again, it works
again without a reload."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from classrooms import services as classroom_services
from tutor import services

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_an_open_chat_follows_the_teachers_pause_without_a_reload(session, student, teacher, classroom):
    me = session("student")
    page = me.page
    me.sign_in("student")
    conversation = services.conversation_start(student=student, classroom=classroom)
    page.goto(f"/conversations/{conversation.id}/")
    question = page.get_by_label("Your question")
    question.fill("What is a prime number?")
    question.press("Enter")
    # The question's reply row comes back over the socket: the page is connected.
    expect(page.locator(".message.tutor")).to_have_count(1, timeout=15_000)

    classroom_services.classroom_pause_set(actor=teacher, classroom=classroom, paused=True)
    notice = page.locator("#closed-notice")
    expect(notice).to_contain_text("paused the tutor", timeout=10_000)
    expect(question).to_be_disabled()
    expect(page.get_by_role("button", name="Send")).to_be_disabled()
    me.check_accessibility("chat paused by the teacher")

    classroom_services.classroom_pause_set(actor=teacher, classroom=classroom, paused=False)
    expect(notice).to_be_hidden(timeout=10_000)
    expect(question).to_be_enabled()
    question.fill("And is 9 one?")
    question.press("Enter")
    expect(page.locator(".message.tutor")).to_have_count(2, timeout=15_000)
