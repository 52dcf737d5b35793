"""Each reply is drafted by its class's model: its task goes to that model's queue (real
Redis), its card names the model, and a model server that does not answer leaves the
reply owed, with the reason on the card, until the reconciler's next try succeeds."""

from __future__ import annotations

import json
import time

import pytest
from django.urls import reverse
from django.utils import translation

from classrooms import services as school_services
from inference import tasks
from inference.engine import reset_engine
from tests.conftest import make_person
from tests.inference.openai_peer import MODEL, REPLY, OpenAIPeer
from tests.processes import free_port
from tests.tutor.helpers import ask
from tutor import drafting, model_settings, services
from tutor.celery import app
from tutor.models import Message
from tutor.selectors import reviewer_view, student_view


def queued_in(queue: str) -> int:
    with app.connection_for_read() as connection:
        try:
            return connection.default_channel.queue_declare(queue=queue, passive=True).message_count
        except Exception:  # noqa: BLE001 - no such queue yet
            return 0


def purge(*queues: str) -> None:
    with app.connection_for_write() as connection:
        for queue in queues:
            try:
                connection.default_channel.queue_purge(queue)
            except Exception:  # noqa: BLE001
                pass


@pytest.fixture
def server_port():
    return free_port()


@pytest.fixture
def two_models(settings, server_port):
    declared = [
        {"key": "local", "label": "Local, fast, weak", "backend": "fake"},
        {
            "key": "server",
            "label": "Académie server",
            "backend": "openai",
            "url": f"http://127.0.0.1:{server_port}/v1",
            "model": MODEL,
            "retries": 0,
            "connect_timeout": 1,
        },
    ]
    settings.TUTOR_MODELS = model_settings.read_models(settings.TUTOR_MODEL, {"TUTOR_MODELS": json.dumps(declared)})
    queues = [model_settings.draft_queue(k) for k in ("local", "server")]
    purge(*queues)
    reset_engine()
    yield settings.TUTOR_MODELS
    reset_engine()
    purge(*queues)


@pytest.fixture
def server_class(school, classroom, two_models):
    admin = make_person("modeladmin", school, is_school_admin=True)
    school_services.school_models_set(actor=admin, school=school, default_model="local", allowed_models=["server"])
    school_services.classroom_model_choose(actor=admin, classroom=classroom, model_key="server")
    return classroom


@pytest.mark.django_db
def test_each_reply_goes_to_its_models_queue(
    student, classmate, classroom, other_classroom, server_class, django_capture_on_commit_callbacks
):
    from classrooms.models import Membership

    Membership.objects.create(classroom=other_classroom, user=classmate, role=Membership.Role.STUDENT)
    with django_capture_on_commit_callbacks(execute=True):
        on_server = ask(student, classroom, "How do I add fractions?")
        local = ask(classmate, other_classroom, "Why is the sky blue?")
    assert (on_server.model_key, local.model_key) == ("server", "local")
    assert queued_in(model_settings.draft_queue("server")) == 1
    assert queued_in(model_settings.draft_queue("local")) == 1


@pytest.mark.django_db
def test_the_review_card_names_the_model_that_drafted_the_reply(
    teacher, student, classroom, server_class, server_port, as_user, monkeypatch
):
    monkeypatch.setattr(tasks, "close_old_connections", lambda: None)  # keep the test's transaction
    monkeypatch.setattr(drafting, "close_old_connections", lambda: None)
    reply = ask(student, classroom)
    peer = OpenAIPeer(port=server_port)
    try:
        assert tasks.draft_reply.run(reply.pk, reply.draft_attempt) == "drafted"
    finally:
        peer.stop()
    reply.refresh_from_db()
    assert reply.draft_text == REPLY and reply.model_key == "server" and reply.model_name == MODEL
    assert reviewer_view(reply)["model"] == "Académie server"
    page = as_user(teacher).get(reverse("review_queue")).content.decode()
    assert "Model: Académie server" in page


@pytest.mark.django_db
def test_a_server_that_does_not_answer_leaves_the_question_owed_until_it_does(
    teacher,
    student,
    classroom,
    server_class,
    server_port,
    as_user,
    settings,
    monkeypatch,
    django_capture_on_commit_callbacks,
):
    monkeypatch.setattr(tasks, "close_old_connections", lambda: None)
    monkeypatch.setattr(drafting, "close_old_connections", lambda: None)
    settings.TUTOR_DRAFT_RETRY_SECONDS = 0.3
    reply = ask(student, classroom, "How do I add 1/2 and 1/3?")

    # The server is down: the draft is postponed, not failed, and the card says why.
    assert tasks.draft_reply.run(reply.pk, reply.draft_attempt) == "postponed"
    reply.refresh_from_db()
    assert reply.status == Message.Status.QUEUED and reply.failure == "The model server does not answer."
    assert reviewer_view(reply)["failure"] == "The model server does not answer."
    page = as_user(teacher).get(reverse("review_queue")).content.decode()
    assert "Waiting for the model… The model server does not answer. The tutor tries again by itself." in page
    with translation.override("fr"):
        assert reviewer_view(reply)["failure"] == "Le serveur du modèle ne répond pas."
    assert student_view(reply)["state"] == "reviewing"  # the student only knows it is on its way

    # The reconciler sends it again, to its model's queue, once the retry delay is past.
    time.sleep(0.4)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.requeue_stuck_drafts() == 1
    assert queued_in(model_settings.draft_queue("server")) == 1

    # The server is back: the next try drafts it, and one approval answers the student once.
    peer = OpenAIPeer(port=server_port)
    try:
        assert tasks.draft_reply.run(reply.pk, reply.draft_attempt) == "drafted"
        assert tasks.draft_reply.run(reply.pk, reply.draft_attempt) == "not owed"  # the duplicate does nothing
    finally:
        peer.stop()
    reply.refresh_from_db()
    assert reply.status == Message.Status.AWAITING_REVIEW and reply.failure == "" and reply.draft_text == REPLY
    services.reply_approve(reply=reply, reviewer=teacher)
    visible = [student_view(m) for m in reply.conversation.messages.all()]
    assert [m["text"] for m in visible if m["state"] == "answered"] == [REPLY]


@pytest.mark.django_db
def test_a_task_sent_to_another_models_workers_is_handed_to_its_own(
    student, classroom, server_class, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(tasks, "close_old_connections", lambda: None)
    monkeypatch.setattr(drafting, "close_old_connections", lambda: None)
    reply = ask(student, classroom)
    monkeypatch.setenv("TUTOR_WORKER_MODEL", "local")  # a local worker got the server's task
    assert tasks.draft_reply.run(reply.pk, reply.draft_attempt) == "sent to the workers of server"
    reply.refresh_from_db()
    assert reply.status == Message.Status.QUEUED and not reply.draft_text
    assert queued_in(model_settings.draft_queue("server")) == 1
