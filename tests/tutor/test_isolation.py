"""Nobody sees a conversation outside the classes they belong to."""

import pytest
from django.urls import reverse

from tests.tutor.helpers import ask, draft, socket

pytestmark = pytest.mark.django_db


def test_a_student_cannot_read_a_classmates_conversation(student, classmate, classroom, as_user):
    reply = ask(student, classroom)
    client = as_user(classmate)
    assert client.get(reverse("conversation", args=[reply.conversation_id])).status_code == 404
    assert client.get(reverse("conversation_messages", args=[reply.conversation_id])).status_code == 404


def test_a_student_cannot_open_or_start_conversations_in_another_class(student, other_classroom, as_user):
    client = as_user(student)
    assert client.get(reverse("classroom", args=[other_classroom.id])).status_code == 404
    assert client.post(reverse("conversation_new", args=[other_classroom.id])).status_code == 404


def test_anonymous_visitors_are_sent_to_sign_in(student, classroom, client):
    reply = ask(student, classroom)
    for url in (
        reverse("conversation", args=[reply.conversation_id]),
        reverse("review_queue"),
        reverse("conversation_messages", args=[reply.conversation_id]),
    ):
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_a_teacher_sees_and_reviews_only_their_own_classes(
    student, stranger_student, teacher, other_classroom, classroom, as_user
):
    mine = draft(ask(student, classroom), text="mine")
    theirs = draft(ask(stranger_student, other_classroom), text="THEIRS-CANARY")
    client = as_user(teacher)
    page = client.get(reverse("review_queue")).content.decode()
    assert "THEIRS-CANARY" not in page and "mine" in page
    assert client.post(reverse("review_approve", args=[theirs.id])).status_code == 404
    assert client.post(reverse("review_reject", args=[theirs.id])).status_code == 404
    assert client.post(reverse("review_regenerate", args=[theirs.id])).status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == "awaiting_review"
    assert client.post(reverse("review_approve", args=[mine.id])).status_code == 302


def test_a_student_cannot_review(student, classroom, as_user):
    reply = draft(ask(student, classroom))
    client = as_user(student)
    assert client.post(reverse("review_approve", args=[reply.id])).status_code == 404
    assert client.get(reverse("review_queue")).status_code == 403
    reply.refresh_from_db()
    assert reply.status == "awaiting_review"


def test_a_student_removed_from_the_class_loses_their_conversations(student, classroom, as_user):
    reply = ask(student, classroom)
    student.memberships.all().delete()
    assert as_user(student).get(reverse("conversation", args=[reply.conversation_id])).status_code == 404


@pytest.mark.django_db(transaction=True)
async def test_sockets_refuse_anonymous_strangers_and_other_origins(student, classmate, outsider, classroom):
    from asgiref.sync import sync_to_async

    reply = await sync_to_async(ask)(student, classroom)
    path = f"/ws/chat/{reply.conversation_id}/"
    for user, origin in (
        (None, b"http://testserver"),
        (classmate, b"http://testserver"),
        (student, b"http://evil.example"),
    ):
        communicator = await socket(path, user, origin=origin)
        connected, _ = await communicator.connect()
        assert not connected
    review = await socket("/ws/review/", outsider)
    assert not (await review.connect())[0]
    review = await socket("/ws/review/", student)
    assert not (await review.connect())[0]


@pytest.mark.django_db(transaction=True)
async def test_a_removed_students_open_socket_closes_at_once(student, classroom):
    from asgiref.sync import sync_to_async

    from tutor import events

    reply = await sync_to_async(ask)(student, classroom)
    chat = await socket(f"/ws/chat/{reply.conversation_id}/", student)
    assert (await chat.connect())[0]
    await sync_to_async(lambda: student.memberships.all().delete())()
    events.person_access_changed(student.id)
    output = await chat.receive_output(timeout=5)
    assert output["type"] == "websocket.close"


def test_the_review_queue_is_oldest_first(student, classmate, teacher, classroom, as_user):
    from datetime import timedelta

    from django.utils import timezone

    from tutor.models import Message

    newer = draft(ask(student, classroom, "asked a minute ago"))
    older = draft(ask(classmate, classroom, "asked ten minutes ago"))  # saved later, asked earlier
    now = timezone.now()
    Message.objects.filter(pk__in=[newer.pk, newer.in_reply_to_id]).update(created_at=now - timedelta(minutes=1))
    Message.objects.filter(pk__in=[older.pk, older.in_reply_to_id]).update(created_at=now - timedelta(minutes=10))
    page = as_user(teacher).get(reverse("review_queue")).content.decode()
    assert page.index("asked ten minutes ago") < page.index("asked a minute ago")
    assert older.id > newer.id  # so neither the order of ids nor of saving makes it pass


@pytest.mark.django_db(transaction=True)
async def test_signing_out_closes_the_students_open_socket(student, classroom):
    from asgiref.sync import sync_to_async
    from channels.testing import WebsocketCommunicator
    from django.conf import settings
    from django.test import Client

    from tutor.asgi import application

    reply = await sync_to_async(ask)(student, classroom)
    client = Client()
    await sync_to_async(client.force_login)(student)
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}".encode()
    chat = WebsocketCommunicator(
        application,
        f"/ws/chat/{reply.conversation_id}/",
        headers=[(b"origin", b"http://testserver"), (b"host", b"testserver"), (b"cookie", cookie)],
    )
    assert (await chat.connect())[0]
    await sync_to_async(client.post)("/accounts/logout/")
    output = await chat.receive_output(timeout=5)
    assert output["type"] == "websocket.close"
