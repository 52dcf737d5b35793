"""When a school admin takes someone's access away, their open sockets close at once."""

import pytest
from asgiref.sync import sync_to_async

from classrooms import services
from tests.tutor.helpers import ask, socket


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("action", ["remove from class", "deactivate", "archive class", "delete"])
async def test_the_students_open_chat_closes_when_the_admin_acts(action, student, classroom, school_admin):
    reply = await sync_to_async(ask)(student, classroom)
    chat = await socket(f"/ws/chat/{reply.conversation_id}/", student)
    assert (await chat.connect())[0]

    def act():
        if action == "remove from class":
            services.member_remove(actor=school_admin, classroom=classroom, person=student)
        elif action == "deactivate":
            services.person_deactivate(actor=school_admin, person=student)
        elif action == "archive class":
            services.classroom_archive(actor=school_admin, classroom=classroom)
        else:
            services.student_delete(actor=school_admin, student=student)

    await sync_to_async(act)()
    output = await chat.receive_output(timeout=5)
    assert output["type"] == "websocket.close"


@pytest.mark.django_db(transaction=True)
async def test_a_removed_teachers_review_socket_closes(teacher, classroom, school_admin):
    review = await socket("/ws/review/", teacher)
    assert (await review.connect())[0]
    await sync_to_async(services.member_remove)(actor=school_admin, classroom=classroom, person=teacher)
    output = await review.receive_output(timeout=5)
    assert output["type"] == "websocket.close"
