"""Control characters and invisible-only text, the same on every path that saves text:
a question (socket), an approved or edited reply, a teacher's own reply, an instruction
for a new draft (HTTP). NUL would raise PostgreSQL's DataError (a 500); invisible-only
text would show students and teachers an empty bubble."""

import pytest
from asgiref.sync import sync_to_async
from django.urls import reverse

from tests.tutor.helpers import ask, draft, socket
from tutor import services
from tutor.models import Message
from tutor.text import clean_text

JSON = {"HTTP_ACCEPT": "application/json"}
INVISIBLE = ["\u200b\u200b\u200b", "\x00\x01\x02", " \ufeff\u2060 ", "\u3164", "\u200d\n\t\u00a0"]


@pytest.mark.parametrize(
    "typed, stored",
    [
        ("2\x00 + 2\x1b = ?", "2 + 2 = ?"),
        ("line one\r\nline two\rthree", "line one\nline two\nthree"),
        ("a\tb", "a\tb"),
        ("\u200bbonjour\u200b", "bonjour"),
        ("cafe\u0301", "cafe\u0301"),  # a combining accent stays with its letter
        ("\u2764\ufe0f", "\u2764\ufe0f"),  # and an emoji keeps its variation selector
        ("ما هو حل المعادلة 2x + 3 = 11؟", "ما هو حل المعادلة 2x + 3 = 11؟"),
        ("1\u200d2", "1\u200d2"),  # joiners inside the text stay
    ],
)
def test_text_is_stored_without_control_characters(typed, stored):
    assert clean_text(typed) == stored


@pytest.mark.parametrize("typed", INVISIBLE)
def test_text_with_nothing_visible_is_empty(typed):
    assert clean_text(typed) == ""


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("typed", INVISIBLE)
async def test_a_question_with_nothing_visible_is_refused_and_nothing_is_saved(student, classroom, typed):
    conversation = await sync_to_async(services.conversation_start)(student=student, classroom=classroom)
    chat = await socket(f"/ws/chat/{conversation.id}/", student)
    assert (await chat.connect())[0]
    await chat.send_json_to({"type": "ask", "text": typed, "client_id": "blank"})
    answer = await chat.receive_json_from(timeout=5)
    await chat.disconnect()
    assert answer["type"] == "error" and answer["code"] == "invalid" and answer["client_id"] == "blank"
    assert answer["message"] == "Your message is empty."
    assert not await sync_to_async(Message.objects.filter(conversation=conversation).exists)()


@pytest.mark.django_db(transaction=True)
async def test_a_question_is_saved_and_drafted_without_its_control_characters(student, classroom):
    conversation = await sync_to_async(services.conversation_start)(student=student, classroom=classroom)
    chat = await socket(f"/ws/chat/{conversation.id}/", student)
    assert (await chat.connect())[0]
    await chat.send_json_to({"type": "ask", "text": "\x00What is 2\x01 + 2?\x02", "client_id": "nul\x00"})
    answer = await chat.receive_json_from(timeout=5)
    await chat.disconnect()
    assert answer["type"] == "messages"
    question = await sync_to_async(Message.objects.get)(conversation=conversation, sender="student")
    assert (question.text, question.client_id) == ("What is 2 + 2?", "nul")
    await sync_to_async(conversation.refresh_from_db)()
    assert conversation.title == "What is 2 + 2?"


@pytest.mark.django_db
@pytest.mark.parametrize("typed", INVISIBLE)
def test_an_approved_reply_with_nothing_visible_is_refused(student, teacher, classroom, as_user, typed):
    reply = draft(ask(student, classroom))
    response = as_user(teacher).post(reverse("review_approve", args=[reply.id]), {"text": typed}, **JSON)
    assert response.status_code == 400
    assert response.json()["error"] == "An approved reply cannot be empty."
    reply.refresh_from_db()
    assert reply.status == "awaiting_review" and reply.final_text == ""


@pytest.mark.django_db
def test_a_draft_of_nothing_visible_cannot_be_approved_as_it_is(student, teacher, classroom, as_user):
    reply = draft(ask(student, classroom), text="\u200b\u200b")
    response = as_user(teacher).post(reverse("review_approve", args=[reply.id]), **JSON)
    assert response.status_code == 400
    reply.refresh_from_db()
    assert reply.status == "awaiting_review"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "route, field, typed, saved",
    [
        ("review_approve", "text", "Good\x00 work\x1b!", {"final_text": "Good work!", "decision": "edited"}),
        ("review_reject", "text", "Try\x00 again\x07.", {"final_text": "Try again.", "decision": "teacher_reply"}),
        ("review_reject", "text", "\u200b\x00", {"final_text": "", "decision": "rejected"}),
        ("review_regenerate", "instruction", "Simpler\x00\x08.", {"regenerate_instruction": "Simpler."}),
        ("review_regenerate", "instruction", "\u2060\x00", {"regenerate_instruction": ""}),
    ],
)
def test_a_teachers_text_is_saved_without_control_characters(
    student, teacher, classroom, as_user, route, field, typed, saved
):
    reply = draft(ask(student, classroom))
    response = as_user(teacher).post(reverse(route, args=[reply.id]), {field: typed}, **JSON)
    assert response.status_code == 200, response.content
    assert Message.objects.filter(pk=reply.pk).values(*saved).get() == saved
