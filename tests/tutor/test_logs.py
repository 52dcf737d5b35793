"""Logs: JSON lines with one request id from the student's question to its draft's task,
never a student's or a draft's text; optional Sentry reports with the bodies scrubbed."""

import gzip
import http.server
import json
import logging
import subprocess
import sys
import threading
import time
import zlib

import pytest

from tests.faults.harness import ReviewSocket, StudentChat, session_cookie
from tests.processes import ROOT, HttpSession, free_port, process_env, start_server, start_worker
from tutor import logs, services
from tutor.models import Message

QUESTION = "LOG-QUESTION-CANARY-7f3e how do I factor x^2 - 9?"
FINAL = "LOG-APPROVED-CANARY-9a1d Think of a difference of two squares."


def log_records(text: str) -> list[dict]:
    """The JSON log lines of a process's output (Celery's start banner is plain print)."""
    records = []
    for line in text.splitlines():
        if line.startswith("{"):
            records.append(json.loads(line))
    return records


def wait_until(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_the_core_loop_logs_json_with_one_request_id_and_no_text(student, teacher, classroom):
    env = {"TUTOR_MODEL_BACKEND": "fake", "LOG_FORMAT": "json", "LOG_LEVEL": "INFO"}
    server, port = start_server("server-logs", **env)
    worker = start_worker("worker-logs", **env)
    try:
        conversation = services.conversation_start(student=student, classroom=classroom)
        chat = StudentChat(port, conversation.id, session_cookie(student))
        review = ReviewSocket(port, session_cookie(teacher))
        chat.ask(QUESTION, "log-q1")
        wait_until(lambda: Message.objects.filter(status="awaiting_review").exists(), 120, "the draft")
        reply = Message.objects.get(status="awaiting_review")
        assert len(reply.draft_text) > 40  # a whole sentence of the model's, grepped for below
        status, body = HttpSession(port, session_cookie(teacher)).request(
            "POST", f"/review/{reply.id}/approve/", {"text": FINAL}
        )
        assert status == 200, body
        wait_until(lambda: FINAL in chat.answered_texts(), 60, "the approved reply to reach the student")
        chat.close()
        review.close()
    finally:
        worker.stop()
        server.stop()
    server_out, worker_out = server.output(), worker.output()
    for text in (QUESTION.split()[0], FINAL.split()[0], reply.draft_text):
        assert text not in server_out, f"{text!r} in the server's log"
        assert text not in worker_out, f"{text!r} in the worker's log"
    served, worked = log_records(server_out), log_records(worker_out)
    assert served and worked and all({"time", "level", "logger", "message", "request_id"} <= set(r) for r in served)
    [asked] = [r for r in served if r["message"].startswith(f"question {reply.in_reply_to_id} asked")]
    assert asked["request_id"] != "-"
    carried = [r for r in worked if r["request_id"] == asked["request_id"]]
    assert any("inference.draft_reply" in r["message"] and "succeeded" in r["message"] for r in carried), (
        "the draft's task logs under the question's request id"
    )
    approvals = [r for r in served if r["logger"] == "uvicorn.access"]
    assert not approvals, "the access log stays off (--no-access-log): nginx logs each request"


def test_the_server_does_not_log_each_socket_or_a_refusal_twice():
    quiet = logs.QuietServerFilter()

    def record(msg, level=logging.INFO, *args):
        return logging.LogRecord("uvicorn.error", level, __file__, 1, msg, args, None)

    assert not quiet.filter(record('%s - "WebSocket %s" [accepted]', logging.INFO, "1.2.3.4", "/ws/chat/1/"))
    assert not quiet.filter(record("connection open"))
    assert not quiet.filter(record("connection rejected (%d %s)", logging.INFO, 403, "Forbidden"))
    assert quiet.filter(record('%s - "WebSocket %s" 403', logging.INFO, "1.2.3.4", "/ws/chat/1/"))  # said once
    assert quiet.filter(record("Uvicorn running on %s", logging.INFO, "http://127.0.0.1:8001"))
    assert quiet.filter(record("connection closed", logging.WARNING))


@pytest.mark.django_db
def test_a_request_gets_an_id_and_keeps_a_valid_one_from_the_proxy(client):
    mine = client.get("/healthz")  # the probe middleware comes first: no id
    assert "X-Request-ID" not in mine
    given = client.get("/accounts/login/", HTTP_X_REQUEST_ID="nginx-4f1d2c3b5a6e")
    assert given["X-Request-ID"] == "nginx-4f1d2c3b5a6e"
    made = client.get("/accounts/login/", HTTP_X_REQUEST_ID="bad id; drop table")
    assert len(made["X-Request-ID"]) == 32 and made["X-Request-ID"].isalnum()


# Sentry, against a real receiving server on loopback.

SENTRY_CANARY = "SENTRY-BODY-CANARY-c0ffee"
SENTRY_SCRIPT = f"""
import os, django
django.setup()
from django.test import Client
from django.test.utils import override_settings
from django.urls import path

def broken(request):
    question = request.POST["text"]  # a local variable holding a student's text
    raise ValueError("the view failed")

urlpatterns = [path("broken/", broken)]
with override_settings(ROOT_URLCONF=__name__):
    response = Client(raise_request_exception=False).post(
        "/broken/?q={SENTRY_CANARY}", {{"text": "{SENTRY_CANARY}"}}, HTTP_X_STUDENT_NOTE="{SENTRY_CANARY}"
    )
print("status", response.status_code)
import sentry_sdk
sentry_sdk.flush(10)
"""


class _Receiver(http.server.BaseHTTPRequestHandler):
    bodies: list[bytes] = []

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        encoding = self.headers.get("Content-Encoding", "")
        if encoding == "gzip":
            raw = gzip.decompress(raw)
        elif encoding == "deflate":
            raw = zlib.decompress(raw)
        elif encoding == "br":
            import brotli

            raw = brotli.decompress(raw)
        self.bodies.append(raw)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


def test_sentry_reports_errors_without_bodies_locals_or_query_strings():
    port = free_port()
    _Receiver.bodies = []
    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", port), _Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        env = process_env(SENTRY_DSN=f"http://publickey@127.0.0.1:{port}/42")
        result = subprocess.run(
            [sys.executable, "-c", SENTRY_SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        assert "status 500" in result.stdout, result.stdout + result.stderr
    finally:
        receiver.shutdown()
    sent = b"".join(_Receiver.bodies).decode("utf-8", "replace")
    assert "ValueError" in sent and "the view failed" in sent, "the error reached the Sentry server"
    assert SENTRY_CANARY not in sent


def test_the_scrubber_removes_what_could_hold_a_students_words():
    event = {
        "request": {
            "url": "https://tutor.example.org/review/1/approve/",
            "data": {"text": SENTRY_CANARY},
            "query_string": f"q={SENTRY_CANARY}",
            "cookies": {"sessionid": SENTRY_CANARY},
            "headers": {"User-Agent": "Firefox", "X-Student-Note": SENTRY_CANARY, "Cookie": SENTRY_CANARY},
        },
        "exception": {"values": [{"type": "ValueError", "stacktrace": {"frames": [{"vars": {"q": SENTRY_CANARY}}]}}]},
        "logentry": {"message": "reply %s failed", "params": [SENTRY_CANARY], "formatted": SENTRY_CANARY},
        "extra": {"note": SENTRY_CANARY},
        "breadcrumbs": {"values": [{"category": "query", "message": f"SELECT '{SENTRY_CANARY}'", "data": {"x": 1}}]},
    }
    scrubbed = logs.scrub_event(event)
    assert SENTRY_CANARY not in json.dumps(scrubbed)
    assert scrubbed["request"]["headers"] == {"User-Agent": "Firefox"}
    assert scrubbed["exception"]["values"][0]["type"] == "ValueError"
