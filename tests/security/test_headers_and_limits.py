"""Protections a browser and a flood meet: CSP, frames, CSRF, login throttling, rate limits."""

import pytest
from django.test import Client, override_settings
from django.urls import reverse

from tests.tutor.helpers import ask, draft
from tutor import services

pytestmark = pytest.mark.django_db


def test_pages_carry_a_strict_content_security_policy_and_deny_framing(client):
    response = client.get(reverse("login"))
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert response["X-Frame-Options"] == "DENY"


def test_pages_have_no_inline_script_or_style(student, teacher, classroom, as_user):
    reply = draft(ask(student, classroom))
    pages = [
        (as_user(student), reverse("conversation", args=[reply.conversation_id])),
        (as_user(teacher), reverse("review_queue")),
        (Client(), reverse("login")),
    ]
    for client, url in pages:
        html = client.get(url).content.decode()
        assert "<script>" not in html and " style=" not in html and "<style" not in html, url
        assert "onclick=" not in html and "onload=" not in html


def test_review_actions_need_the_csrf_token(student, teacher, classroom):
    reply = draft(ask(student, classroom))
    client = Client(enforce_csrf_checks=True)
    client.force_login(teacher)
    assert client.post(reverse("review_approve", args=[reply.id])).status_code == 403
    reply.refresh_from_db()
    assert reply.status == "awaiting_review"


@override_settings(AXES_ENABLED=True, AXES_FAILURE_LIMIT=3)
def test_repeated_wrong_passwords_lock_the_login(student):
    client = Client()
    for _ in range(3):
        client.post(reverse("login"), {"username": "student", "password": "wrong"})
    response = client.post(reverse("login"), {"username": "student", "password": "pass-word-123"})
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_a_student_sending_too_fast_is_asked_to_slow_down(student, classroom, settings):
    settings.TUTOR_MESSAGES_PER_MINUTE = 3
    settings.TUTOR_MAX_PENDING_PER_STUDENT = 10
    conversation = services.conversation_start(student=student, classroom=classroom)
    for i in range(3):
        services.question_ask(conversation=conversation, text=f"question {i}")
    with pytest.raises(services.SlowDown):
        services.question_ask(conversation=conversation, text="one more")
    assert conversation.messages.filter(sender="student").count() == 3


def test_a_student_with_unanswered_questions_waits_before_asking_more(student, classroom, settings):
    settings.TUTOR_MAX_PENDING_PER_STUDENT = 2
    conversation = services.conversation_start(student=student, classroom=classroom)
    services.question_ask(conversation=conversation, text="one")
    services.question_ask(conversation=conversation, text="two")
    with pytest.raises(services.SlowDown, match="still reviewing"):
        services.question_ask(conversation=conversation, text="three")


def test_a_class_at_its_pending_cap_refuses_new_questions(student, classmate, classroom, settings):
    settings.TUTOR_MAX_PENDING_PER_CLASS = 1
    ask(student, classroom)
    with pytest.raises(services.SlowDown):
        ask(classmate, classroom)
