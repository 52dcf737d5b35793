"""Faults injected against real processes: killed workers, a restarted Redis, a restarted
PostgreSQL. After each, every question has exactly one reply path (one draft, or an
explicit failure a teacher can act on), every approved reply reaches its student, and
the processes recover with no manual step.

TUTOR_FAULT_KILLS sets how many workers are killed (default 20).
"""

import os
import shutil
import subprocess
import time

import pytest
from django.db import connection

from tests.faults.harness import ReviewSocket, StudentChat, session_cookie
from tests.processes import HttpSession, PrivateRedis, start_server, start_worker
from tutor import services
from tutor.models import Message

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# A stub engine of fixed speed: ~40 words at 50 ms a word, so a kill lands mid-draft.
STUB = {
    "TUTOR_MODEL_BACKEND": "fake",
    "TUTOR_FAKE_SECONDS_PER_TOKEN": "0.05",
    "TUTOR_DRAFT_SILENT_SECONDS": "2",
    "TUTOR_RECONCILE_SECONDS": "1",
    "TUTOR_DRAFT_STUCK_SECONDS": "5",
    # A Celery worker hung after a Redis restart is restarted by its supervisor after this.
    "TUTOR_WORKER_STUCK_SECONDS": "10",
}
LONG_QUESTION = "Explain, step by step and with examples, " + "how fractions with unlike denominators add " * 3


def wait_until(condition, timeout=60, every=0.1, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def status_of(reply_id):
    return Message.objects.values_list("status", flat=True).get(pk=reply_id)


def assert_one_reply_path_each(questions):
    for question in Message.objects.filter(pk__in=[q.pk for q in questions]):
        replies = Message.objects.filter(in_reply_to=question)
        assert replies.count() == 1
        reply = replies.get()
        assert reply.status in ("awaiting_review", "failed", "approved", "rejected"), reply.status
        if reply.status == "awaiting_review":
            assert reply.draft_text and not reply.previous_drafts


def test_drafts_survive_workers_killed_mid_generation(student, classmate, classroom, settings):
    settings.TUTOR_MAX_PENDING_PER_STUDENT = 100
    settings.TUTOR_MESSAGES_PER_MINUTE = 100
    kills = int(os.environ.get("TUTOR_FAULT_KILLS", "20"))
    questions = []
    for i in range(kills):
        worker = start_worker(f"worker-kill-{i}", **STUB)
        conversation = services.conversation_start(student=student if i % 2 else classmate, classroom=classroom)
        question, _ = services.question_ask(conversation=conversation, text=f"{i}: {LONG_QUESTION}")
        questions.append(question)
        wait_until(lambda q=question: status_of(q.reply.pk) == "drafting", what="drafting to start")
        time.sleep(0.3)  # some tokens in
        worker.kill()  # SIGKILL: no goodbye, the task stays unacknowledged
        assert status_of(question.reply.pk) == "drafting"
    survivor = start_worker("worker-after-kills", beat=True, **STUB)  # beat runs the reconciler
    try:
        wait_until(
            lambda: Message.objects.filter(in_reply_to__in=questions, status="awaiting_review").count() == kills,
            timeout=120,
            what="every killed draft to be drafted again",
        )
    finally:
        survivor.stop()
    assert_one_reply_path_each(questions)
    attempts = list(Message.objects.filter(in_reply_to__in=questions).values_list("draft_attempt", flat=True))
    print(f"\nworker kills: {kills}; drafts recovered: {kills}; attempts per draft: {sorted(attempts)}")
    assert all(a >= 1 for a in attempts)  # each was re-queued by the reconciler, not by hand


def test_a_restarted_redis_loses_nothing(student, classmate, teacher, classroom, settings):
    redis = PrivateRedis()
    env = {**STUB, "REDIS_URL": redis.url}
    server, port = start_server("server-redis-restart", **env)
    worker = start_worker("worker-redis-restart", beat=True, **env)
    try:
        conversations = [services.conversation_start(student=s, classroom=classroom) for s in (student, classmate)]
        chats = [StudentChat(port, c.id, session_cookie(c.student)) for c in conversations]
        review = ReviewSocket(port, session_cookie(teacher))
        teacher_http = HttpSession(port, session_cookie(teacher))
        for n, chat in enumerate(chats):
            chat.ask(f"before the restart {n}", f"before-{n}")
        wait_until(
            lambda: Message.objects.filter(status="awaiting_review").count() == 2, timeout=120, what="first drafts"
        )

        redis.stop()
        for n, chat in enumerate(chats):
            chat.ask(f"during the restart {n}", f"during-{n}")  # typed while offline
        time.sleep(1)
        redis.start()

        # Each socket either reconnects by itself or, left open by the server, is put back in
        # its groups (tutor/redis_watch.py): either way, what follows must reach it. Celery
        # may hang after the restart ("Unrecoverable error"); the supervisor then restarts
        # it. Generous bounds: the machine may be busy.
        wait_until(
            lambda: Message.objects.filter(status="awaiting_review").count() == 4,
            timeout=240,
            what="drafts of the questions asked during the restart",
        )
        for reply in Message.objects.filter(status="awaiting_review"):
            status, body = teacher_http.request("POST", f"/review/{reply.id}/approve/", {"text": f"final {reply.id}"})
            assert status == 200, body
        for chat, conversation in zip(chats, conversations, strict=True):
            expected = {f"final {r.id}" for r in Message.objects.filter(conversation=conversation, sender="tutor")}
            wait_until(
                lambda c=chat, e=expected: set(c.answered_texts()) == e,
                timeout=120,
                what="approved replies to reach the student",
            )
            assert Message.objects.filter(conversation=conversation, sender="student").count() == 2
        restarts = worker.output().count("it is stuck. Killing it")
        print(
            f"\nredis restart: reconnects {[c.reconnects for c in chats]} + teacher {review.reconnects}; "
            f"close codes {[c.closes for c in chats]}; stuck Celery workers restarted: {restarts}"
        )
        for socket_ in chats + [review]:
            socket_.close()
    finally:
        worker.stop()
        server.stop()
        redis.stop()


@pytest.mark.skipif(not shutil.which("pg_ctlcluster"), reason="needs the machine's PostgreSQL cluster tools")
def test_a_restarted_postgresql_loses_nothing(student, teacher, classroom):
    if connection.vendor != "postgresql":
        pytest.skip("runs against PostgreSQL (DATABASE_URL)")
    server, port = start_server("server-pg-restart", **STUB)
    worker = start_worker("worker-pg-restart", beat=True, **STUB)
    try:
        conversation = services.conversation_start(student=student, classroom=classroom)
        chat = StudentChat(port, conversation.id, session_cookie(student))
        teacher_http = HttpSession(port, session_cookie(teacher))
        chat.ask("before the restart", "pg-before")
        wait_until(lambda: Message.objects.filter(status="awaiting_review").count() == 1, what="first draft")
        version = os.listdir("/etc/postgresql")[0]
        restart = subprocess.Popen(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"])
        chat.ask("during the restart", "pg-during")
        restart.wait(60)
        connection.close()
        wait_until(
            lambda: Message.objects.filter(status="awaiting_review").count() == 2,
            timeout=90,
            what="the question asked during the restart to be drafted",
        )
        for reply in Message.objects.filter(status="awaiting_review"):
            status, body = teacher_http.request("POST", f"/review/{reply.id}/approve/", {"text": f"final {reply.id}"})
            assert status == 200, body
        wait_until(lambda: len(chat.answered_texts()) == 2, timeout=30, what="both answers to reach the student")
        assert Message.objects.filter(conversation=conversation, sender="student").count() == 2
        chat.close()
    finally:
        worker.stop()
        server.stop()
