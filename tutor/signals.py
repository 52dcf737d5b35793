"""tutor's part in what happens to people: their open sockets, and their conversations
in a data export or before a deletion (the signals of classrooms.signals, and Django's
sign-out)."""

from __future__ import annotations

from django.contrib.auth.signals import user_logged_out
from django.dispatch import receiver
from django.http import HttpRequest

from classrooms import signals as classrooms_signals
from classrooms.models import User
from classrooms.roster import neutralise_cell
from tutor import events
from tutor.models import Conversation, Message
from tutor.selectors import student_view


@receiver(user_logged_out)
def close_sockets_on_logout(sender: type, request: HttpRequest, user: User | None, **kwargs: object) -> None:
    """Signing out closes the person's open sockets at once."""
    if user is not None:
        events.person_access_changed(user.id, ended_session=request.session.session_key or "")


@receiver(classrooms_signals.access_changed)
def recheck_sockets(sender: type, user_ids: list[int], **kwargs: object) -> None:
    for user_id in user_ids:
        events.person_access_changed(user_id)


@receiver(classrooms_signals.class_availability_changed)
def tell_open_chats(sender: type, classroom_id: int, **kwargs: object) -> None:
    events.class_availability_changed(classroom_id)


@receiver(classrooms_signals.student_data_exported)
def export_conversations(sender: type, student: User, **kwargs: object) -> dict:
    """The student's own words and the replies they were sent, exactly as they read them
    (through the approval gate): never a draft."""
    conversations = (
        Conversation.objects.filter(student=student)
        .select_related("classroom")
        .prefetch_related("messages")
        .order_by("created_at", "id")
    )
    return {
        "conversations": [
            {
                "class": neutralise_cell(c.classroom.name),
                "title": c.title,
                "started": c.created_at.isoformat(),
                "messages": [student_view(m) for m in c.messages.all()],
            }
            for c in conversations
        ]
    }


@receiver(classrooms_signals.student_data_counted)
def count_conversations(sender: type, student: User, **kwargs: object) -> dict:
    return {
        "conversations": Conversation.objects.filter(student=student).count(),
        "messages": Message.objects.filter(conversation__student=student, sender=Message.Sender.STUDENT).count(),
    }
