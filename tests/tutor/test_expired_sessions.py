"""A socket lives no longer than the session that opened it.

An expired session's row stays in the database until clearsessions runs, and
SessionStore.exists() is true for it meanwhile: an open socket must still stop at the
session's end, read nothing and send nothing after it, and close with 4401 (the page
then asks the person to sign in again).
"""

import asyncio
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

from tests.tutor.helpers import ask, draft
from tutor import events
from tutor.consumers import CLOSE_SIGNED_OUT
from tutor.models import Message

pytestmark = pytest.mark.django_db(transaction=True)


def sign_in(user, *, expires_in: float | None = None) -> tuple[bytes, str]:
    """A session cookie for `user`, and the session's key; optionally ending soon."""
    client = Client()
    client.force_login(user)
    key = client.cookies[settings.SESSION_COOKIE_NAME].value
    if expires_in is not None:
        Session.objects.filter(session_key=key).update(expire_date=timezone.now() + timedelta(seconds=expires_in))
    return f"{settings.SESSION_COOKIE_NAME}={key}".encode(), key


def expire_now(key: str) -> None:
    """What time does to a session: its end passes; the row stays until clearsessions."""
    Session.objects.filter(session_key=key).update(expire_date=timezone.now() - timedelta(seconds=1))


async def open_socket(path: str, cookie: bytes) -> WebsocketCommunicator:
    from tutor.asgi import application

    communicator = WebsocketCommunicator(
        application, path, headers=[(b"origin", b"http://testserver"), (b"host", b"testserver"), (b"cookie", cookie)]
    )
    assert (await communicator.connect(timeout=5))[0]
    return communicator


async def test_an_expired_students_socket_takes_no_question(student, classroom):
    reply = await sync_to_async(ask)(student, classroom)
    cookie, key = await sync_to_async(sign_in)(student)
    chat = await open_socket(f"/ws/chat/{reply.conversation_id}/", cookie)
    await sync_to_async(expire_now)(key)
    assert await sync_to_async(Session.objects.filter(session_key=key).exists)()  # not purged

    await chat.send_json_to({"type": "ask", "text": "Asked after the session ended", "client_id": "late"})
    output = await chat.receive_output(timeout=5)
    assert output == {"type": "websocket.close", "code": CLOSE_SIGNED_OUT}
    assert not await sync_to_async(Message.objects.filter(text="Asked after the session ended").exists)()
    await chat.disconnect()


async def test_an_expired_teachers_socket_answers_no_sync(student, teacher, classroom):
    await sync_to_async(lambda: draft(ask(student, classroom), text="DRAFT-CANARY"))()
    cookie, key = await sync_to_async(sign_in)(teacher)
    review = await open_socket("/ws/review/", cookie)
    await sync_to_async(expire_now)(key)
    await review.send_json_to({"type": "sync"})
    assert await review.receive_output(timeout=5) == {"type": "websocket.close", "code": CLOSE_SIGNED_OUT}
    await review.disconnect()


async def test_a_socket_closes_by_itself_when_its_session_ends(student, classroom):
    reply = await sync_to_async(ask)(student, classroom)
    cookie, _key = await sync_to_async(sign_in)(student, expires_in=1.5)
    chat = await open_socket(f"/ws/chat/{reply.conversation_id}/", cookie)
    # Nothing is sent: the socket closes at the session's end all the same.
    assert await chat.receive_output(timeout=10) == {"type": "websocket.close", "code": CLOSE_SIGNED_OUT}
    await chat.disconnect()


async def test_a_teacher_whose_session_ended_receives_no_draft_progress(student, teacher, classroom):
    reply = await sync_to_async(ask)(student, classroom)
    cookie, _key = await sync_to_async(sign_in)(teacher, expires_in=1.5)
    review = await open_socket("/ws/review/", cookie)
    events.draft_progress(classroom.id, reply.id, 0, "PROGRESS-WHILE-SIGNED-IN")
    frame = await review.receive_json_from(timeout=5)
    assert frame["type"] == "progress" and frame["text"] == "PROGRESS-WHILE-SIGNED-IN"

    await asyncio.sleep(2)  # the session ends
    for _ in range(3):
        events.draft_progress(classroom.id, reply.id, 0, "PROGRESS-AFTER-THE-END")
    assert await review.receive_output(timeout=5) == {"type": "websocket.close", "code": CLOSE_SIGNED_OUT}
    assert await review.receive_nothing(timeout=1)
    await review.disconnect()


async def test_a_changed_password_ends_the_open_sockets_of_old_sessions(student, classroom):
    reply = await sync_to_async(ask)(student, classroom)
    cookie, _key = await sync_to_async(sign_in)(student)
    chat = await open_socket(f"/ws/chat/{reply.conversation_id}/", cookie)

    def change_password():
        student.set_password("a-new-pass-word-456")
        student.save()

    await sync_to_async(change_password)()
    await chat.send_json_to({"type": "sync", "since": 0})
    assert await chat.receive_output(timeout=5) == {"type": "websocket.close", "code": CLOSE_SIGNED_OUT}
    await chat.disconnect()
