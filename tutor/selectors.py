"""Reads and access rules for conversations and replies.

`student_view` is the approval gate: the only function that turns a message into what a
student may see. Every page, socket, API and export a student reaches goes through it.
"""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404
from django.utils.translation import gettext as _

from classrooms.models import REVIEW_ROLES, Membership, User
from tutor.models import Conversation, Message

PENDING_STATUSES = (
    Message.Status.QUEUED,
    Message.Status.DRAFTING,
    Message.Status.AWAITING_REVIEW,
    Message.Status.FAILED,
)


def student_visible_text(message: Message) -> str | None:
    """The text a student may read, or None while no teacher has decided.

    A tutor reply's text is final_text, which only a teacher's decision writes; the
    model's draft_text never leaves this function.
    """
    if message.sender == Message.Sender.STUDENT:
        return message.text
    if message.status in (Message.Status.APPROVED, Message.Status.REJECTED) and message.final_text:
        return message.final_text
    return None


def student_view(message: Message) -> dict:
    """A message as its student sees it."""
    text = student_visible_text(message)
    if message.sender == Message.Sender.STUDENT:
        state = "sent"
    elif text is not None:
        state = "answered"
    elif message.status == Message.Status.REJECTED:
        state = "declined"
    else:
        state = "reviewing"  # queued, drafting, awaiting review or failed: the teacher has it
    return {
        "id": message.id,
        "sender": message.sender,
        "text": text or "",
        "state": state,
        "version": message.version,
        "client_id": message.client_id,
        "created_at": message.created_at.isoformat(),
        "in_reply_to": message.in_reply_to_id,
    }


def conversations_of_student(user: User, classroom_id: int) -> QuerySet[Conversation]:
    return Conversation.objects.filter(student=user, classroom_id=classroom_id)


def conversation_for_student(user: User, conversation_id: int) -> Conversation:
    """The conversation, if it is this student's, in a class they still belong to; else 404."""
    conversation = (
        Conversation.objects.select_related("classroom")
        .filter(
            pk=conversation_id,
            student=user,
            classroom__archived=False,
            classroom__memberships__user=user,
            classroom__memberships__role=Membership.Role.STUDENT,
        )
        .first()
    )
    if conversation is None or not user.is_active:
        raise Http404
    return conversation


def conversation_for_reviewer(user: User, conversation_id: int) -> Conversation:
    conversation = (
        Conversation.objects.select_related("classroom", "student")
        .filter(
            pk=conversation_id,
            classroom__archived=False,
            classroom__memberships__user=user,
            classroom__memberships__role__in=REVIEW_ROLES,
        )
        .first()
    )
    if conversation is None or not user.is_active:
        raise Http404
    return conversation


def messages_for_student(conversation: Conversation, since_version: int = 0) -> list[dict]:
    messages = conversation.messages.filter(version__gt=since_version).order_by("created_at", "id")
    return [student_view(m) for m in messages]


def review_queue(user: User) -> QuerySet[Message]:
    """Replies a teacher has to act on in their classes, oldest question first."""
    return (
        Message.objects.filter(
            sender=Message.Sender.TUTOR,
            status__in=PENDING_STATUSES,
            conversation__classroom__archived=False,
            conversation__classroom__memberships__user=user,
            conversation__classroom__memberships__role__in=REVIEW_ROLES,
        )
        .select_related("conversation__classroom", "conversation__student", "in_reply_to")
        .order_by("created_at", "id")
    )


def reply_for_reviewer(user: User, reply_id: int) -> Message:
    """A tutor reply in one of this person's reviewed classes; 404 for missing and forbidden alike."""
    if not user.is_authenticated or not user.is_active:
        raise Http404
    reply = (
        Message.objects.select_related("conversation__classroom", "conversation__student", "in_reply_to")
        .filter(
            pk=reply_id,
            sender=Message.Sender.TUTOR,
            conversation__classroom__archived=False,
            conversation__classroom__memberships__user=user,
            conversation__classroom__memberships__role__in=REVIEW_ROLES,
        )
        .first()
    )
    if reply is None:
        raise Http404
    return reply


def reviewer_view(reply: Message, history_limit: int = 12) -> dict:
    """A reply as a teacher reviews it: the draft, the question, and the conversation before it."""
    conversation = reply.conversation
    earlier = list(
        conversation.messages.filter(created_at__lt=reply.in_reply_to.created_at).order_by("-created_at", "-id")[
            :history_limit
        ]
    )
    earlier.reverse()
    return {
        "id": reply.id,
        "status": reply.status,
        "status_label": str(Message.Status(reply.status).label) if reply.status else "",
        "attempt": reply.draft_attempt,
        "draft": reply.draft_text,
        "failure": reply.failure,
        "question": reply.in_reply_to.text,
        "asked_at": reply.in_reply_to.created_at.isoformat(),
        "student": str(conversation.student),
        "classroom": conversation.classroom.name,
        "classroom_id": conversation.classroom_id,
        "conversation_id": conversation.id,
        "history": [
            {"sender": m.sender, "text": student_visible_text(m) or ""}
            for m in earlier
            if student_visible_text(m) is not None
        ],
        "decided": reply.status in (Message.Status.APPROVED, Message.Status.REJECTED),
        "decision": reply.decision,
        "reviewed_by": str(reply.reviewed_by) if reply.reviewed_by_id else "",
    }


def decline_notice() -> str:
    return _("Your teacher chose not to send this answer. Try asking another way, or ask them in class.")
