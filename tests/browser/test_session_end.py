"""When the session ends under an open chat, the page says so and offers to sign in
again (back to the same conversation), instead of trying to reconnect for ever."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.utils import timezone
from playwright.sync_api import expect

from tutor import services

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_the_chat_says_the_session_ended_and_offers_to_sign_in_again(session, student, classroom):
    me = session("student")
    page = me.page
    me.sign_in("student")
    conversation = services.conversation_start(student=student, classroom=classroom)
    key = next(c["value"] for c in me.context.cookies() if c["name"] == "sessionid")
    Session.objects.filter(session_key=key).update(expire_date=timezone.now() + timedelta(seconds=4))
    page.goto(f"/conversations/{conversation.id}/")
    notice = page.locator("#connection")
    expect(notice).to_contain_text("Your session has ended.", timeout=15_000)
    me.check_accessibility("session ended")
    notice.get_by_role("link", name="Sign in again").click()
    page.get_by_label("Username").fill("student")
    page.get_by_label("Password").fill("pass-word-123")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**/conversations/{conversation.id}/")
    expect(page.get_by_label("Your question")).to_be_visible()
