"""Bad input gets a clear error; the socket stays usable; nothing is saved half-way."""

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings

from tests.tutor.helpers import ask, draft, socket
from tutor import services
from tutor.models import Message

pytestmark = pytest.mark.django_db(transaction=True)


async def open_chat(student, classroom):
    conversation = await sync_to_async(services.conversation_start)(student=student, classroom=classroom)
    chat = await socket(f"/ws/chat/{conversation.id}/", student)
    assert (await chat.connect())[0]
    return conversation, chat


@pytest.mark.parametrize(
    "frame, code",
    [
        ("not json", "invalid_frame"),
        ("[1, 2]", "invalid_frame"),
        ('{"type": "dance"}', "unknown_type"),
        ('{"type": "__init__"}', "unknown_type"),
        ('{"type": "ask", "text": 5}', "invalid_frame"),
        ('{"type": "ask", "text": "   "}', "invalid"),
        ('{"type": "sync", "since": "x"}', "invalid_frame"),
        ("x" * 20_000, "too_large"),
        ("[" * 5000 + "]" * 5000, "invalid_frame"),  # 10 kB that would exhaust Python's recursion
        ('{"type": "ask", "text": ' + "[" * 5000 + "]" * 5000 + "}", "invalid_frame"),
        ('{"type": "sync", "since": true}', "invalid_frame"),
    ],
)
async def test_bad_frames_get_a_clear_error_and_the_socket_stays_usable(student, classroom, frame, code):
    conversation, chat = await open_chat(student, classroom)
    await chat.send_to(text_data=frame)
    answer = await chat.receive_json_from(timeout=5)
    assert answer["type"] == "error" and answer["code"] == code and answer["message"]
    await chat.send_json_to({"type": "ask", "text": "Still here?", "client_id": "after-error"})
    answer = await chat.receive_json_from(timeout=5)
    assert answer["type"] == "messages"
    await chat.disconnect()
    assert await sync_to_async(Message.objects.filter(conversation=conversation, sender="student").count)() == 1


async def test_an_oversize_message_is_refused_with_the_limit(student, classroom):
    conversation, chat = await open_chat(student, classroom)
    await chat.send_json_to({"type": "ask", "text": "a" * (settings.TUTOR_MAX_MESSAGE_CHARS + 1), "client_id": "big"})
    answer = await chat.receive_json_from(timeout=5)
    assert answer["code"] == "invalid" and str(settings.TUTOR_MAX_MESSAGE_CHARS) in answer["message"]
    assert answer["client_id"] == "big"
    await chat.disconnect()
    assert not await sync_to_async(Message.objects.filter(conversation=conversation).exists)()


async def test_the_same_message_sent_twice_is_saved_once(student, classroom):
    conversation, chat = await open_chat(student, classroom)
    for _ in range(2):
        await chat.send_json_to({"type": "ask", "text": "Once only", "client_id": "same-key"})
        await chat.receive_json_from(timeout=5)
    await chat.disconnect()
    count = await sync_to_async(Message.objects.filter(conversation=conversation, sender="student").count)()
    assert count == 1


async def test_a_sync_from_a_version_that_does_not_exist_yet_still_gets_the_next_answer(student, teacher, classroom):
    reply = await sync_to_async(lambda: draft(ask(student, classroom, "What is 6 x 7?")))()
    chat = await socket(f"/ws/chat/{reply.conversation_id}/", student)
    assert (await chat.connect())[0]
    await chat.send_json_to({"type": "sync", "since": 10**6})  # a stale tab, a bad client
    caught_up = await chat.receive_json_from(timeout=5)
    assert caught_up["type"] == "messages" and caught_up["version"] <= 10

    await sync_to_async(services.reply_approve)(reply=reply, reviewer=teacher, text="Count 6 groups of 7.")
    frame = await chat.receive_json_from(timeout=5)
    await chat.disconnect()
    assert [m["text"] for m in frame["messages"] if m["state"] == "answered"] == ["Count 6 groups of 7."]
