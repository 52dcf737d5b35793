from __future__ import annotations

from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from inference.engine import Draft
from tutor import services
from tutor.models import Conversation, Message


class ScriptedModel:
    """A stand-in for the model behind tutor.drafting's engine interface: answers each
    draft with the next text of its script, and records the prompts it saw."""

    model_name = "scripted"
    context_window = 2048
    max_new_tokens = 160

    def __init__(self, *texts: str):
        self.texts = list(texts)
        self.prompts: list[list[dict]] = []

    def count_tokens(self, messages):
        return sum(len(m["content"].split()) + 4 for m in messages)

    def draft(self, *, messages, max_new_tokens, on_text, should_stop, fairness_key):
        self.prompts.append(messages)
        text = self.texts.pop(0) if self.texts else ""
        if on_text:
            on_text(text)
        return Draft(text=text, model_name=self.model_name, settings={"max_new_tokens": max_new_tokens}, seconds=0.01)


def ask(student, classroom, text="What is a prime number?", conversation=None) -> Message:
    """A student asks; returns the queued tutor reply."""
    conversation = conversation or services.conversation_start(student=student, classroom=classroom)
    question, _ = services.question_ask(conversation=conversation, text=text)
    return question.reply


def draft(reply: Message, text: str = "Which numbers divide 7? DRAFT-CANARY") -> Message:
    """A draft saved for review as the worker saves it, without the model and without the
    draft's checks (run_drafting runs those)."""
    assert services.draft_start(reply_id=reply.id, attempt=reply.draft_attempt) is not None
    assert services.draft_finish(
        reply_id=reply.id, attempt=reply.draft_attempt, text=text, model_name="test", generation_settings={}
    )
    reply.refresh_from_db()
    return reply


def run_drafting(reply: Message, model: ScriptedModel) -> Message:
    """What the worker does for a reply, through the one drafting service (tutor.drafting:
    the draft's checks included), with a scripted model. The service's
    close_old_connections is skipped: it would end the test's transaction."""
    from unittest import mock

    from tutor import drafting

    with mock.patch.object(drafting, "close_old_connections", lambda: None):
        assert drafting.draft_reply(reply_id=reply.pk, attempt=reply.draft_attempt, engine=model) == "drafted"
    reply.refresh_from_db()
    return reply


def session_cookie(user) -> bytes:
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}".encode()


async def socket(path: str, user=None, origin: bytes = b"http://testserver") -> WebsocketCommunicator:
    """A communicator through the real ASGI stack (origin check, session auth, routing)."""
    from asgiref.sync import sync_to_async

    from tutor.asgi import application

    headers = [(b"origin", origin), (b"host", b"testserver")]
    if user is not None:
        headers.append((b"cookie", await sync_to_async(session_cookie)(user)))
    return WebsocketCommunicator(application, path, headers=headers)


def conversation_of(reply: Message) -> Conversation:
    return reply.conversation


class SmtpInbox:
    """A real SMTP server (aiosmtpd) on loopback that keeps what it receives, for the
    safeguarding alert e-mails. `stop()` takes it down, as a broken mail server."""

    def __init__(self):
        import email
        import threading

        from aiosmtpd.controller import Controller

        from tests.processes import free_port

        inbox = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                with inbox.lock:
                    inbox.messages.append(email.message_from_bytes(envelope.content))
                return "250 OK"

        self.messages = []
        self.lock = threading.Lock()
        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def settings(self) -> dict:
        return {
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": self.port,
            "EMAIL_TIMEOUT": 5,
        }

    def wait_for(self, count: int, timeout: float = 30.0) -> list:
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.messages) >= count:
                    return list(self.messages)
            time.sleep(0.05)
        raise AssertionError(f"{count} e-mail(s) expected, {len(self.messages)} received")

    def stop(self) -> None:
        self.controller.stop()
