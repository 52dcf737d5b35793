"""Hostile text from a student, the model or a teacher is shown as text on the other side."""

import re

import pytest
from django.urls import reverse

from tests.tutor.helpers import ask, draft
from tutor import services

pytestmark = pytest.mark.django_db

PAYLOADS = [
    "<script>alert('x')</script>",
    "<img src=x onerror=alert(1)>",
    '<a href="javascript:alert(1)">click</a>',
    "[click](javascript:alert(1))",
    "<svg/onload=alert(1)>",
]


def assert_inert(html: str):
    """No live tag from the payloads: escaped text (&lt;script&gt;) is fine."""
    lowered = html.lower()
    assert "<script>alert" not in lowered
    assert not re.search(r"<img[^>]*onerror", lowered)
    assert "<svg/onload" not in lowered
    assert not re.search(r"<a[^>]*href=[\"']?javascript:", lowered)


@pytest.mark.parametrize("payload", PAYLOADS)
def test_a_students_hostile_question_is_inert_on_the_teachers_page(student, teacher, classroom, as_user, payload):
    reply = draft(ask(student, classroom, text=f"help {payload}"))
    assert_inert(as_user(teacher).get(reverse("review_queue")).content.decode())
    assert reply.in_reply_to.text.endswith(payload)  # kept as written, escaped when shown


@pytest.mark.parametrize("payload", PAYLOADS)
def test_a_hostile_draft_or_edit_is_inert_for_teacher_and_student(student, teacher, classroom, as_user, payload):
    reply = draft(ask(student, classroom), text=f"draft {payload}")
    assert_inert(as_user(teacher).get(reverse("review_queue")).content.decode())
    services.reply_approve(reply=reply, reviewer=teacher, text=f"edit {payload}")
    client = as_user(student)
    assert_inert(client.get(reverse("conversation", args=[reply.conversation_id])).content.decode())
    data = client.get(reverse("conversation_messages", args=[reply.conversation_id])).json()
    for message in data["messages"]:
        # Plain text is inserted with textContent; any HTML the server renders is sanitised.
        assert_inert(message.get("html", ""))
