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
    """What the worker does for a reply, without the model."""
    assert services.draft_start(reply_id=reply.id, attempt=reply.draft_attempt) is not None
    assert services.draft_finish(
        reply_id=reply.id, attempt=reply.draft_attempt, text=text, model_name="test", generation_settings={}
    )
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
