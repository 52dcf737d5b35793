"""Health: /healthz while the process answers, /readyz only while the platform can draft
(database, Redis, and a ready worker of each configured model), and the waiting messages
that say when the model is loading or absent. None of it says anything about a person."""

import json
import time

import pytest
from asgiref.sync import sync_to_async
from django.urls import reverse

from tests.processes import PrivateRedis, start_server, start_worker
from tests.tutor.helpers import ask, draft, socket
from tutor import selectors, workers

pytestmark = pytest.mark.django_db

CANARY = "HEALTH-QUESTION-CANARY-51c2"


@pytest.fixture
def heartbeat():
    """A drafting worker's heartbeat, published to the test's Redis by this process."""
    workers.forget_memo()
    beat = workers.Heartbeat(model=workers.DEFAULT_MODEL, role="drafting", queue="health-test-queue", capacity=4)
    yield beat
    beat.stop()
    workers.forget_memo()


def test_healthz_answers_anyone_without_a_session(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_probes_are_answered_for_any_host_name_and_never_redirected(client, settings):
    # A local supervisor or scraper asks a server directly, by its address.
    settings.ALLOWED_HOSTS = ["tutor.school.example"]
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/healthz", HTTP_HOST="10.1.2.3:8001").status_code == 200
    assert client.get("/readyz", HTTP_HOST="10.1.2.3:8001").status_code == 503
    assert client.get("/classes/", HTTP_HOST="10.1.2.3:8001").status_code == 400  # the rest is still guarded


def test_readyz_is_503_without_a_worker_and_says_why(client, student, classroom):
    ask(student, classroom, CANARY)
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"]["ok"] and body["checks"]["redis"]["ok"]
    assert body["models"]["local"]["state"] == "none" and body["models"]["local"]["ok"] is False
    assert body["drafts"]["owed"] == 1 and body["drafts"]["oldest_owed_s"] >= 0
    assert CANARY not in response.content.decode() and "student" not in response.content.decode()


def test_readyz_says_loading_with_an_estimate_then_ready_once_the_queue_loop_turns(client, heartbeat):
    heartbeat.loading(phase="converting", progress=0.4, eta_s=42)
    heartbeat.publish()
    body = client.get("/readyz").json()
    assert body["models"]["local"]["state"] == "loading"
    assert body["models"]["local"]["eta_s"] == 42 and body["models"]["local"]["progress"] == 0.4
    heartbeat.loaded(3.0)
    assert client.get("/readyz").status_code == 503  # loaded, but not taking drafts yet
    heartbeat.tick()
    heartbeat.publish()
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    model = response.json()["models"]["local"]
    assert model["state"] == "ready" and model["ready_workers"] == 1 and model["queue_depth"] == 0


def test_a_housekeeping_worker_does_not_make_the_platform_ready(client):
    beat = workers.Heartbeat(model=workers.DEFAULT_MODEL, role="housekeeping", queue="hk-test", capacity=2)
    try:
        beat.tick()
        beat.publish()
        body = client.get("/readyz").json()
        assert body["housekeeping"]["ready_workers"] == 1 and body["models"]["local"]["state"] == "none"
    finally:
        beat.stop()


def test_a_worker_whose_queue_loop_stopped_counts_as_stalled(client, heartbeat, settings):
    heartbeat.tick()
    heartbeat.last_tick = time.monotonic() - 10 * settings.TUTOR_WORKER_BEAT_SECONDS
    heartbeat.publish()
    response = client.get("/readyz")
    assert response.status_code == 503 and response.json()["models"]["local"]["state"] == "stalled"


def test_the_student_is_told_the_model_is_loading_with_an_estimate(student, classroom, heartbeat):
    queued = ask(student, classroom, "Why is the sky blue?")
    [plain] = selectors.wait_estimates(queued.conversation)
    assert plain["model"] == "none"  # no worker at all: said plainly, not "your teacher is reviewing"
    heartbeat.loading(phase="reading", eta_s=120)
    heartbeat.publish()
    workers.forget_memo()
    [wait] = selectors.wait_estimates(queued.conversation)
    assert wait["model"] == "loading" and wait["model_eta_s"] == 120
    assert wait["seconds"] >= 120  # the draft cannot start before the model is loaded
    heartbeat.tick()
    heartbeat.publish()
    workers.forget_memo()
    [ready] = selectors.wait_estimates(queued.conversation)
    assert "model" not in ready and ready["seconds"] < 120


def test_a_drafted_reply_waits_on_the_teacher_not_the_model(student, classroom):
    reply = draft(ask(student, classroom))
    [wait] = selectors.wait_estimates(reply.conversation)
    assert set(wait) == {"reply_id", "seconds"}


@pytest.mark.django_db(transaction=True)
async def test_the_review_queue_says_when_the_model_is_loading(teacher, student, classroom, heartbeat, as_user):
    await sync_to_async(ask)(student, classroom)
    heartbeat.loading(phase="converting", eta_s=75)
    await sync_to_async(heartbeat.publish)()
    page = await sync_to_async(lambda: as_user(teacher).get(reverse("review_queue")).content.decode())()
    assert 'data-state="loading"' in page and 'data-eta="75"' in page
    review = await socket("/ws/review/", teacher)
    assert (await review.connect())[0]
    await review.send_json_to({"type": "sync"})
    queue = await review.receive_json_from(timeout=5)
    assert queue["type"] == "queue" and queue["drafting"]["state"] == "loading" and queue["drafting"]["eta_s"] == 75
    heartbeat.tick()
    await sync_to_async(heartbeat.publish)()
    workers.forget_memo()
    await review.send_json_to({"type": "drafting"})
    frame = await review.receive_json_from(timeout=5)
    assert frame == {"type": "drafting", "drafting": frame["drafting"]} and frame["drafting"]["state"] == "ready"
    await review.disconnect()


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_readyz_follows_redis_and_the_worker_through_real_processes(student, classroom):
    """A real server and `manage.py worker` on a Redis of the test's own: 503 before the
    worker, 200 once it is ready, 503 while Redis is stopped, 200 when it is back, 503
    once the worker is killed. Generous bounds: the machine may be busy."""
    redis = PrivateRedis()
    env = {"REDIS_URL": redis.url, "TUTOR_MODEL_BACKEND": "fake", "TUTOR_WORKER_STUCK_SECONDS": "15"}
    server, port = start_server("server-readyz", **env)
    worker = None
    try:
        assert readyz(port)[0] == 503
        worker = start_worker("worker-readyz", **env)
        wait_for_readyz(port, 200, "the worker to be ready")
        redis.stop()
        status, body = wait_for_readyz(port, 503, "Redis to be missed")
        assert body["checks"]["redis"]["ok"] is False
        redis.start()
        wait_for_readyz(port, 200, "the worker to be ready again after Redis is back", timeout=180)
        worker.kill()
        status, body = wait_for_readyz(port, 503, "the killed worker's heartbeat to run out")
        assert body["models"]["local"]["state"] == "none"
    finally:
        if worker is not None:
            worker.stop()
        server.stop()
        redis.stop()


def readyz(port: int) -> tuple[int, dict]:
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", "/readyz")
    response = connection.getresponse()
    return response.status, json.loads(response.read())


def wait_for_readyz(port: int, want: int, what: str, timeout: float = 90) -> tuple[int, dict]:
    deadline = time.monotonic() + timeout
    status, body = None, None
    while time.monotonic() < deadline:
        try:
            status, body = readyz(port)
        except OSError:
            status = None
        if status == want:
            return status, body
        time.sleep(0.5)
    raise AssertionError(f"/readyz never answered {want} waiting for {what}; last: {status} {body}")


def test_the_wait_of_a_question_never_carries_text(student, classroom, heartbeat):
    heartbeat.loading(phase="reading", eta_s=30)
    heartbeat.publish()
    workers.forget_memo()
    reply = ask(student, classroom, CANARY)
    estimates = selectors.class_wait_estimates(classroom.pk)
    assert estimates[reply.conversation_id][0]["model"] == "loading"
    assert CANARY not in json.dumps(estimates)
