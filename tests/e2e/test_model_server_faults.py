"""A real worker against a model server that misbehaves on purpose, one fault after the
other: down when the worker starts, an unknown model name, 429 and 500, a stream that
dies midway, an event that is not JSON, a first token that never comes. Each shows a
plain reason on the teacher's card and a clear line in the worker's log; the question
stays owed throughout, and in the end exactly one approved reply reaches the student."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse

from inference.backends.openai_backend import SERVER_DOWN, SERVER_NO_MODEL, SERVER_UNREADABLE
from tests.faults.test_faults import wait_until
from tests.inference.openai_peer import MODEL, REPLY, OpenAIPeer
from tests.processes import free_port, start_worker
from tests.tutor.helpers import ask
from tutor import model_settings, services
from tutor.models import Message
from tutor.selectors import reviewer_view, student_view

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_each_fault_of_the_model_server_is_explained_and_the_question_answered_once(
    student, teacher, classroom, settings
):
    port = free_port()
    models = [
        {
            "key": "server",
            "label": "District server",
            "backend": "openai",
            "url": f"http://127.0.0.1:{port}/v1",
            "model": MODEL,
            "retries": 1,
            "connect_timeout": 1,
            "first_token_timeout": 2,
        }
    ]
    settings.TUTOR_MODELS = model_settings.read_models(settings.TUTOR_MODEL, {"TUTOR_MODELS": json.dumps(models)})
    worker = start_worker(
        "worker-faulty-server",
        beat=True,  # the reconciler tries postponed drafts again
        model="server",
        TUTOR_MODELS=json.dumps(models),
        TUTOR_RECONCILE_SECONDS="1",
        TUTOR_DRAFT_RETRY_SECONDS="1",
    )
    peer = None
    try:
        reply = ask(student, classroom, "How do I add 1/2 and 1/3?")
        assert reply.model_key == "server"

        def waits_because(reason):
            def check():
                current = Message.objects.get(pk=reply.pk)
                assert current.status in ("queued", "drafting"), current.status  # still owed, never failed
                return current.status == "queued" and current.failure == reason

            return check

        # 1. Nothing listens: the worker started anyway, and the card says why it waits.
        wait_until(waits_because(SERVER_DOWN), timeout=60, what="'does not answer' on the card")
        assert "does not answer" in worker.output() and "cannot connect" in worker.output()
        teacher_page = _review_page(teacher)
        assert "The model server does not answer. The tutor tries again by itself." in teacher_page

        # 2. The server is up, but serves another model.
        peer = OpenAIPeer(port=port)
        peer.behave("unknown_model")
        wait_until(waits_because(SERVER_NO_MODEL), timeout=60, what="'does not offer' on the card")
        assert "unknown model 'peer-model'" in worker.output()

        # 3. Overloaded, then failing.
        peer.behave("429", "500")
        wait_until(waits_because(SERVER_DOWN), timeout=60, what="429/500 on the card")
        wait_until(lambda: "HTTP 429" in worker.output() and "HTTP 500" in worker.output(), what="429/500 logged")

        # 4. A stream that dies midway, then an event that is not JSON.
        peer.behave("die", "not_json")
        wait_until(waits_because(SERVER_UNREADABLE), timeout=60, what="'cannot read' on the card")
        wait_until(lambda: "stream broke" in worker.output() and "not JSON" in worker.output(), what="logged")

        # 5. A first token that never comes, then a good answer: the draft arrives whole.
        peer.behave("silent", "ok")
        wait_until(lambda: Message.objects.get(pk=reply.pk).status == "awaiting_review", timeout=60, what="draft")
        assert "no first token" in worker.output()
        reply.refresh_from_db()
        assert reply.draft_text == REPLY and reply.failure == "" and not reply.previous_drafts
        assert reviewer_view(reply)["model"] == "District server"

        services.reply_approve(reply=reply, reviewer=teacher)
        replies = Message.objects.filter(in_reply_to=reply.in_reply_to)
        assert replies.count() == 1
        answered = [m for m in (student_view(r) for r in reply.conversation.messages.all()) if m["state"] == "answered"]
        assert [m["text"] for m in answered] == [REPLY]
        assert "Traceback" not in worker.output()
    finally:
        worker.stop()
        if peer is not None:
            peer.stop()


def _review_page(teacher) -> str:
    client = Client()
    client.force_login(teacher)
    return client.get(reverse("review_queue")).content.decode()


def test_a_model_folder_transformers_cannot_load_leaves_the_worker_up_and_the_question_owed(
    student, teacher, classroom, tmp_path
):
    """A folder whose architecture transformers does not know: the worker stays up and
    says why, the teacher's card and /readyz say the model cannot be loaded, nothing
    reaches the student; once the folder holds a model, a worker started again drafts it."""
    from tests.inference.tiny_models import build_model
    from tutor import health, selectors, workers

    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "no-such-architecture", "hidden_size": 8}))
    env = {
        "TUTOR_MODEL_BACKEND": "transformers",
        "TUTOR_MODEL_PATH": str(folder),
        "TUTOR_MODEL_GGUF": "",
        "TUTOR_MODEL_DEVICE": "cpu",
        "TUTOR_MODEL_CACHE": str(tmp_path / "cache"),
        "TUTOR_MODEL_THREADS": "1",
        "TUTOR_MODEL_MAX_BATCH": "2",
        "TUTOR_MODEL_MAX_NEW_TOKENS": "8",
    }
    worker = start_worker("worker-unloadable", ready=workers.UNAVAILABLE_MESSAGE, **env)
    try:
        reply = ask(student, classroom, "How do I add 1/2 and 1/3?")

        def waits_for_the_model():
            current = Message.objects.get(pk=reply.pk)
            assert current.status in ("queued", "drafting"), current.status  # owed, never failed
            return current.status == "queued" and current.failure.startswith(selectors.MODEL_UNLOADABLE)

        wait_until(waits_for_the_model, timeout=60, what="'cannot be loaded' on the card")
        reply.refresh_from_db()
        card = reviewer_view(reply)["failure"]
        assert "cannot be loaded" in card and "no-such-architecture" in card
        assert "The model cannot be loaded, so drafts wait until it is fixed" in _review_page(teacher)
        workers.forget_memo()
        assert selectors.drafting_status_for([classroom])["state"] == "unavailable"  # the teacher's socket says it
        ready, body = health.readiness()
        assert not ready and body["models"]["local"]["state"] == "unavailable" and body["drafts"]["owed"] == 1
        log = worker.output()
        assert "cannot be loaded" in log and "no-such-architecture" in log and "stopped (exit" not in log
        assert worker.popen.poll() is None  # the worker is still up
        seen = [student_view(m) for m in reply.conversation.messages.all()]
        assert not [m for m in seen if m["state"] == "answered"] and "no-such-architecture" not in json.dumps(
            seen, default=str
        )
    finally:
        worker.stop()

    # The folder fixed, the worker started again: the owed question is drafted.
    (folder / "config.json").unlink()
    build_model(folder, "llama")
    worker = start_worker("worker-unloadable-fixed", **env)
    try:
        assert services.requeue_stuck_drafts(queued_for=0.01) == 1  # what the reconciler does
        wait_until(lambda: Message.objects.get(pk=reply.pk).status == "awaiting_review", timeout=60, what="draft")
        reply.refresh_from_db()
        assert reply.failure == "" and reply.draft_text
        services.reply_approve(reply=reply, reviewer=teacher)
        answered = [m for m in (student_view(r) for r in reply.conversation.messages.all()) if m["state"] == "answered"]
        assert [m["text"] for m in answered] == [reply.draft_text]
    finally:
        worker.stop()
