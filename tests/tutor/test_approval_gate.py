"""The invariant: a student never sees a draft no teacher approved, by any route."""

import json

import pytest
from asgiref.sync import sync_to_async
from django.urls import reverse

from tests.tutor.helpers import ask, draft, socket
from tutor import services
from tutor.models import Message

CANARY = "DRAFT-CANARY-7f3a"


def student_routes(reply):
    conversation = reply.conversation
    return [
        reverse("conversation", args=[conversation.id]),
        reverse("conversation_messages", args=[conversation.id]),
        reverse("classroom", args=[conversation.classroom_id]),
        reverse("student_classes"),
    ]


@pytest.mark.django_db
@pytest.mark.parametrize("state", ["queued", "drafting", "awaiting_review", "failed", "rejected", "regenerated"])
def test_student_pages_never_show_an_unapproved_draft(student, teacher, classroom, as_user, state):
    reply = ask(student, classroom)
    if state != "queued":
        services.draft_start(reply_id=reply.id, attempt=reply.draft_attempt)
    if state in ("awaiting_review", "rejected", "regenerated"):
        services.draft_finish(reply_id=reply.id, attempt=0, text=CANARY, model_name="t", generation_settings={})
    if state == "failed":
        services.draft_fail(reply_id=reply.id, attempt=0, reason=CANARY)
    reply.refresh_from_db()
    if state == "rejected":
        services.reply_reject(reply=reply, reviewer=teacher)
    if state == "regenerated":
        services.reply_regenerate(reply=reply, reviewer=teacher, instruction="simpler")
    client = as_user(student)
    for url in student_routes(reply):
        response = client.get(url)
        assert response.status_code == 200, url
        assert CANARY not in response.content.decode(), url
    page = client.get(reverse("conversation", args=[reply.conversation_id])).content.decode()
    if state == "rejected":
        assert "chose not to send" in page
    else:
        assert "reviewing" in page


@pytest.mark.django_db
def test_student_sees_exactly_the_approved_text_once_a_teacher_approves(student, teacher, classroom, as_user):
    reply = draft(ask(student, classroom), text=CANARY + " draft")
    services.reply_approve(reply=reply, reviewer=teacher, text="Edited: which numbers divide 7?")
    data = as_user(student).get(reverse("conversation_messages", args=[reply.conversation_id])).json()
    tutor_texts = [m["text"] for m in data["messages"] if m["sender"] == "tutor"]
    assert tutor_texts == ["Edited: which numbers divide 7?"]
    assert CANARY not in json.dumps(data)
    reply.refresh_from_db()
    assert reply.draft_text == CANARY + " draft"  # the model's draft is kept apart
    assert reply.decision == Message.Decision.EDITED


@pytest.mark.django_db
def test_teacher_reply_instead_of_the_draft_reaches_the_student(student, teacher, classroom, as_user):
    reply = draft(ask(student, classroom), text=CANARY)
    services.reply_reject(reply=reply, reviewer=teacher, teacher_text="Let's look at it together in class.")
    page = as_user(student).get(reverse("conversation", args=[reply.conversation_id])).content.decode()
    assert "look at it together" in page
    assert CANARY not in page


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_student_socket_never_receives_a_draft_and_receives_the_approved_text(student, teacher, classroom):
    reply = await sync_to_async(ask)(student, classroom)
    chat = await socket(f"/ws/chat/{reply.conversation_id}/", student)
    connected, _ = await chat.connect()
    assert connected
    await chat.send_json_to({"type": "sync", "since": 0})
    frames = [await chat.receive_json_from(timeout=5)]
    reply = await sync_to_async(draft)(reply, text=CANARY)
    # The draft goes to teachers only; the student's socket gets nothing with it.
    assert await chat.receive_nothing(timeout=0.5)
    await sync_to_async(services.reply_approve)(reply=reply, reviewer=teacher, text="Think: what divides 7?")
    frames.append(await chat.receive_json_from(timeout=5))
    await chat.disconnect()
    assert CANARY not in json.dumps(frames)
    answered = [m for m in frames[-1]["messages"] if m["state"] == "answered"]
    assert [m["text"] for m in answered] == ["Think: what divides 7?"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "status, decision, final_text",
    [
        ("awaiting_review", "", "SNEAKED-INTO-FINAL"),  # a draft no teacher decided
        ("queued", "", "SNEAKED-INTO-FINAL"),
        ("failed", "", "SNEAKED-INTO-FINAL"),
        ("grouped", "", "SNEAKED-INTO-FINAL"),
        ("rejected", "rejected", "SNEAKED-INTO-FINAL"),  # rejected without a teacher's reply
        ("approved", "as_drafted", ""),  # approved, yet nothing to read
    ],
)
def test_the_database_refuses_student_text_that_no_teacher_sent(student, classroom, status, decision, final_text):
    from django.db import IntegrityError, transaction

    reply = draft(ask(student, classroom))
    with pytest.raises(IntegrityError), transaction.atomic():
        Message.objects.filter(pk=reply.pk).update(status=status, decision=decision, final_text=final_text)
    reply.refresh_from_db()
    assert reply.final_text == "" and reply.status == "awaiting_review"


@pytest.mark.django_db
def test_the_database_takes_what_teachers_send(student, teacher, classroom):
    approved = services.reply_approve(reply=draft(ask(student, classroom)), reviewer=teacher, text="Yes.")
    own = services.reply_reject(reply=draft(ask(student, classroom, "2?")), reviewer=teacher, teacher_text="Mine.")
    declined = services.reply_reject(reply=draft(ask(student, classroom, "3?")), reviewer=teacher)
    assert [(m.status, m.final_text) for m in (approved, own, declined)] == [
        ("approved", "Yes."),
        ("rejected", "Mine."),
        ("rejected", ""),
    ]
