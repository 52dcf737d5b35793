"""While PostgreSQL restarts, nobody gets a 500 and no socket dies of it.

The outage is real but confined to this test's database: PostgreSQL refuses new
connections to it and drops the ones it has (ALTER DATABASE ... ALLOW_CONNECTIONS
false, pg_terminate_backend), which is what a restart does to the site, without
disturbing anyone else's database on the machine.

A page or request gets 503 with a clear message (the page reloads itself); a socket
event retries once, so a short outage goes unnoticed, and a longer one closes the
socket with 1013, which the pages reconnect on.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager

import psycopg
import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings
from django.db import connection, connections
from django.test import Client
from django.urls import reverse
from psycopg import sql

from tests.tutor.helpers import ask, draft, socket
from tutor import events
from tutor.consumers import CLOSE_TRY_AGAIN, DB_RETRY_SECONDS
from tutor.models import Message

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql",
        reason="a PostgreSQL outage: runs with DATABASE_URL=postgres://...",
    ),
]


class Outage:
    """PostgreSQL refuses connections to the test database until `end()`."""

    def __init__(self):
        db = connection.settings_dict
        self.name = db["NAME"]
        self.admin = psycopg.connect(
            host=db["HOST"] or None, port=db["PORT"] or None, user=db["USER"], password=db["PASSWORD"] or None,
            dbname="postgres", autocommit=True,
        )  # fmt: skip
        self.admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(sql.Identifier(self.name)))
        self.admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [self.name],
        )
        self.ended = False

    def end(self) -> None:
        if not self.ended:
            self.ended = True
            self.admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(sql.Identifier(self.name)))
            self.admin.close()

    def end_in(self, seconds: float) -> None:
        threading.Timer(seconds, self.end).start()


@contextmanager
def outage():
    for conn in connections.all():
        conn.close()
    down = Outage()
    try:
        yield down
    finally:
        down.end()
        for conn in connections.all():
            conn.close()  # dropped by PostgreSQL: this thread connects again when it needs to


def test_pages_and_requests_answer_503_while_the_database_is_down(student, teacher, classroom):
    reply = draft(ask(student, classroom))
    as_student, as_teacher = Client(), Client()
    as_student.force_login(student)
    as_teacher.force_login(teacher)
    page = reverse("conversation", args=[reply.conversation_id])
    with outage():
        response = as_student.get(page)
        assert response.status_code == 503 and response["Retry-After"]
        assert "Nothing was saved: try again in a few seconds." in response.content.decode()
        assert 'http-equiv="refresh"' in response.content.decode()  # the page tries again by itself
        api = as_student.get(reverse("conversation_messages", args=[reply.conversation_id]))
        assert api.status_code == 503 and api.json()["code"] == "unavailable"
        approve = as_teacher.post(
            reverse("review_approve", args=[reply.id]), {"text": "Good."}, HTTP_ACCEPT="application/json"
        )
        assert approve.status_code == 503 and approve.json()["error"]
        assert as_student.get(reverse("login")).status_code in (200, 302, 503)  # never a 500
    assert as_student.get(page).status_code == 200
    assert Message.objects.get(pk=reply.pk).status == "awaiting_review"  # the approval was not half-saved


def test_a_socket_event_during_a_short_outage_is_delivered_after_one_retry(student, teacher, classroom):
    reply = draft(ask(student, classroom))

    async def scenario():
        review = await socket("/ws/review/", teacher)
        assert (await review.connect(timeout=10))[0]
        down = await sync_to_async(start_outage)()
        down.end_in(DB_RETRY_SECONDS / 3)  # back before the retry
        events.review_item_changed(classroom.id, reply.id)
        frame = await review.receive_json_from(timeout=10 + DB_RETRY_SECONDS)
        await sync_to_async(end_outage)(down)
        await review.disconnect()
        return frame

    frame = async_to_sync(scenario)()
    assert frame["type"] == "reply" and frame["reply"]["id"] == reply.id


def test_a_socket_event_during_a_long_outage_closes_the_socket_for_a_reconnect(student, teacher, classroom):
    reply = draft(ask(student, classroom))

    async def scenario():
        review = await socket("/ws/review/", teacher)
        assert (await review.connect(timeout=10))[0]
        down = await sync_to_async(start_outage)()
        try:
            events.review_item_changed(classroom.id, reply.id)
            closed = await review.receive_output(timeout=10 + DB_RETRY_SECONDS)
        finally:
            await sync_to_async(end_outage)(down)
        await review.disconnect()
        # The page reconnects and catches up.
        again = await socket("/ws/review/", teacher)
        assert (await again.connect(timeout=10))[0]
        await again.send_json_to({"type": "sync"})
        queue = await again.receive_json_from(timeout=10)
        await again.disconnect()
        return closed, queue

    closed, queue = async_to_sync(scenario)()
    assert closed == {"type": "websocket.close", "code": CLOSE_TRY_AGAIN}
    assert [r["id"] for r in queue["replies"]] == [reply.id]


def test_a_question_asked_during_a_short_outage_is_saved_once_the_database_is_back(student, classroom):
    reply = ask(student, classroom)

    async def scenario():
        chat = await socket(f"/ws/chat/{reply.conversation_id}/", student)
        assert (await chat.connect(timeout=10))[0]
        down = await sync_to_async(start_outage)()
        down.end_in(DB_RETRY_SECONDS / 3)
        await chat.send_json_to({"type": "ask", "text": "Asked while PostgreSQL restarts", "client_id": "pg"})
        frame = await chat.receive_json_from(timeout=10 + DB_RETRY_SECONDS)
        await sync_to_async(end_outage)(down)
        await chat.disconnect()
        return frame

    frame = async_to_sync(scenario)()
    assert frame["type"] == "messages"
    assert Message.objects.filter(text="Asked while PostgreSQL restarts", client_id="pg").count() == 1


def start_outage() -> Outage:
    for conn in connections.all():
        conn.close()
    return Outage()


def end_outage(down: Outage) -> None:
    down.end()
    for conn in connections.all():
        conn.close()
