"""The core loop through real services: a student's question over the WebSocket, the
real Celery worker with the real model through Redis, the draft on the teacher's socket,
the teacher's edit and approval, and exactly the final text on the student's socket."""

import asyncio
import json
import re
import time
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from django.test import Client
from django.urls import reverse

from tests.processes import start_worker
from tests.tutor.helpers import socket
from tutor import services
from tutor.models import Message

pytestmark = [pytest.mark.e2e, pytest.mark.model, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def real_worker(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        worker = start_worker("worker-real-model", timeout=600)
    yield worker
    worker.stop()


async def next_frame(communicator, want, timeout=120):
    """Frames until one matches `want`; returns (frame, all frames seen)."""
    seen = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        frame = await communicator.receive_json_from(timeout=max(0.1, deadline - loop.time()))
        seen.append(frame)
        if want(frame):
            return frame, seen


async def test_question_to_approved_answer_with_the_real_model(real_worker, student, teacher, classroom):
    conversation = await sync_to_async(services.conversation_start)(student=student, classroom=classroom)
    review = await socket("/ws/review/", teacher)
    assert (await review.connect())[0]
    await review.send_json_to({"type": "sync"})
    await next_frame(review, lambda f: f["type"] == "queue")
    chat = await socket(f"/ws/chat/{conversation.id}/", student)
    assert (await chat.connect())[0]
    asked = time.monotonic()
    await chat.send_json_to({"type": "ask", "text": "How do I add 1/2 and 1/3?", "client_id": "q1"})
    frame, _ = await next_frame(chat, lambda f: f["type"] == "messages" and f["messages"])
    assert [m["state"] for m in frame["messages"]] == ["sent", "reviewing"]

    # The draft arrives on the teacher's socket, streamed then finished.
    frame, seen = await next_frame(
        review, lambda f: f["type"] == "reply" and f["reply"]["status"] == "awaiting_review", timeout=300
    )
    drafted_s = time.monotonic() - asked
    first_progress = next((f for f in seen if f["type"] == "progress"), None)
    draft = frame["reply"]["draft"]
    assert len(draft.split()) >= 3
    assert any(f["type"] == "progress" for f in seen), "tokens stream to the teacher while the model writes"
    reply = await sync_to_async(Message.objects.get)(pk=frame["reply"]["id"])
    assert reply.model_name and "smollm2" in reply.model_name.lower()

    # Nothing reached the student meanwhile but nudges through the gate: no draft text.
    student_frames = []
    while not await chat.receive_nothing(timeout=0.2):
        student_frames.append(await chat.receive_json_from())
    assert draft not in json.dumps(student_frames)

    final = "Find a common denominator first: what number do 2 and 3 both divide?"
    client = Client()
    await sync_to_async(client.force_login)(teacher)
    response = await sync_to_async(client.post)(
        reverse("review_approve", args=[reply.id]), {"text": final}, HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 200
    frame, seen = await next_frame(chat, lambda f: any(m["state"] == "answered" for m in f.get("messages", [])))
    answered = [m["text"] for m in frame["messages"] if m["state"] == "answered"]
    assert answered == [final]
    assert draft not in json.dumps(seen) or draft in final
    await chat.disconnect()
    await review.disconnect()
    record_figures(real_worker, drafted_s, draft, first_progress is not None)


def record_figures(worker, drafted_s: float, draft: str, streamed: bool) -> None:
    """The core loop's figures on this machine, kept with the test's artifacts."""
    # The worker command supervises the Celery process that holds the model: count both.
    pids = [worker.popen.pid] + Path(f"/proc/{worker.popen.pid}/task/{worker.popen.pid}/children").read_text().split()
    rss_mb = (
        sum(int(re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{pid}/status").read_text()).group(1)) for pid in pids) / 1024
    )
    ready = re.search(r"ready in ([\d.]+) s", worker.output())
    figures = {
        "question_to_finished_draft_s": round(drafted_s, 2),
        "draft_words": len(draft.split()),
        "worker_model_load_s": float(ready.group(1)) if ready else None,
        "worker_rss_mb": round(rss_mb),
        "streamed": streamed,
    }
    out = Path(__file__).resolve().parents[2] / "test-artifacts"
    out.mkdir(exist_ok=True)
    (out / "core_loop_figures.json").write_text(json.dumps(figures, indent=1))
    print("core loop figures:", figures)
