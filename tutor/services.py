"""Writes of the tutoring domain: asking, drafting, reviewing.

Each change is atomic; where two actors can race (two teachers, a worker and a
teacher) it is a conditional update whose row count says who won. Events and tasks
are sent only after the transaction commits.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from classrooms.models import Classroom, User
from classrooms.services import audit_record
from tutor import events
from tutor.models import Conversation, Message
from tutor.selectors import PENDING_STATUSES

log = logging.getLogger(__name__)


class TutorError(Exception):
    """A refusal the person asking should read; nothing was changed."""

    code = "error"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidMessage(TutorError):
    code = "invalid"


class SlowDown(TutorError):
    code = "slow_down"


class ReviewConflict(TutorError):
    code = "conflict"


def _next_version(conversation_id: int) -> int:
    """Bump and return the conversation's version; call inside a transaction."""
    Conversation.objects.filter(pk=conversation_id).update(version=F("version") + 1, updated_at=timezone.now())
    return Conversation.objects.values_list("version", flat=True).get(pk=conversation_id)


def _send_draft_task(reply_id: int, attempt: int) -> None:
    from tutor.celery import app

    try:
        app.send_task("inference.draft_reply", args=[reply_id, attempt], retry=True,
                      retry_policy={"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5})
    except Exception:
        # The broker is down: the reply stays queued in the database and the
        # reconciler sends it again once the broker is back.
        log.exception("could not queue the draft of reply %s; the reconciler will", reply_id)


def _after_commit_enqueue_draft(reply: Message) -> None:
    reply_id, attempt = reply.id, reply.draft_attempt
    transaction.on_commit(lambda: _send_draft_task(reply_id, attempt))


def _after_commit_notify(reply: Message, student: bool = True, reviewers: bool = True) -> None:
    conversation_id, classroom_id, reply_id = reply.conversation_id, reply.conversation.classroom_id, reply.id
    if student:
        transaction.on_commit(lambda: events.conversation_changed(conversation_id))
    if reviewers:
        transaction.on_commit(lambda: events.review_item_changed(classroom_id, reply_id))


def conversation_start(*, student: User, classroom: Classroom, title: str = "") -> Conversation:
    return Conversation.objects.create(student=student, classroom=classroom, title=title[:120])


def question_ask(*, conversation: Conversation, text: str, client_id: str = "") -> tuple[Message, bool]:
    """The student asks; a reply is queued for drafting. Returns (question, created).

    The same client_id twice returns the first question: a message typed offline and
    re-sent on reconnect is saved once.
    """
    text = (text or "").strip()
    client_id = (client_id or "")[:64]
    if not text:
        raise InvalidMessage(_("Your message is empty."))
    if len(text) > settings.TUTOR_MAX_MESSAGE_CHARS:
        raise InvalidMessage(
            _("Your message is too long (%(n)d characters; at most %(max)d).")
            % {"n": len(text), "max": settings.TUTOR_MAX_MESSAGE_CHARS}
        )
    if client_id:
        existing = conversation.messages.filter(client_id=client_id).first()
        if existing:
            return existing, False
    student = conversation.student
    now = timezone.now()
    recent = Message.objects.filter(
        conversation__student=student, sender=Message.Sender.STUDENT, created_at__gte=now - timedelta(minutes=1)
    ).count()
    if recent >= settings.TUTOR_MESSAGES_PER_MINUTE:
        raise SlowDown(_("You are sending messages very fast. Wait a minute, then try again."))
    waiting = Message.objects.filter(
        conversation__student=student, sender=Message.Sender.TUTOR, status__in=PENDING_STATUSES
    ).count()
    if waiting >= settings.TUTOR_MAX_PENDING_PER_STUDENT:
        raise SlowDown(_("Your teacher is still reviewing your earlier questions. Wait for an answer first."))
    class_waiting = Message.objects.filter(
        conversation__classroom_id=conversation.classroom_id,
        sender=Message.Sender.TUTOR,
        status__in=PENDING_STATUSES,
    ).count()
    if class_waiting >= settings.TUTOR_MAX_PENDING_PER_CLASS:
        raise SlowDown(_("Your teacher has many questions to review right now. Try again in a few minutes."))

    with transaction.atomic():
        version = _next_version(conversation.id)
        question = Message.objects.create(
            conversation=conversation, sender=Message.Sender.STUDENT, text=text, client_id=client_id, version=version
        )
        reply = Message.objects.create(
            conversation=conversation,
            sender=Message.Sender.TUTOR,
            in_reply_to=question,
            status=Message.Status.QUEUED,
            queued_at=timezone.now(),
            version=version,
        )
        if not conversation.title:
            Conversation.objects.filter(pk=conversation.pk).update(title=text[:60])
        _after_commit_enqueue_draft(reply)
        _after_commit_notify(reply)
    return question, True


# Drafting: called by the worker's task, which carries (reply_id, attempt).

def draft_start(*, reply_id: int, attempt: int) -> Message | None:
    """Claim a queued reply for drafting. None if it is no longer owed (already drafted,
    decided, regenerated since): a redelivered task then does nothing."""
    now = timezone.now()
    claimed = Message.objects.filter(
        pk=reply_id, draft_attempt=attempt, status=Message.Status.QUEUED
    ).update(status=Message.Status.DRAFTING, draft_started_at=now, heartbeat_at=now)
    if not claimed:
        return None
    reply = Message.objects.select_related("conversation__classroom", "in_reply_to").get(pk=reply_id)
    transaction.on_commit(lambda: events.review_item_changed(reply.conversation.classroom_id, reply_id))
    return reply


def draft_is_wanted(*, reply_id: int, attempt: int) -> bool:
    """False once a teacher rejected or regenerated the reply, or the conversation was deleted."""
    return Message.objects.filter(pk=reply_id, draft_attempt=attempt, status=Message.Status.DRAFTING).exists()


def draft_finish(
    *, reply_id: int, attempt: int, text: str, model_name: str, generation_settings: dict,
    mean_token_prob: float | None = None,
) -> bool:
    """Save the finished draft for review. False if the reply moved on meanwhile."""
    with transaction.atomic():
        saved = Message.objects.filter(pk=reply_id, draft_attempt=attempt, status=Message.Status.DRAFTING).update(
            status=Message.Status.AWAITING_REVIEW,
            draft_text=text,
            model_name=model_name[:200],
            generation_settings=generation_settings,
            mean_token_prob=mean_token_prob,
            drafted_at=timezone.now(),
            failure="",
        )
        if saved:
            reply = Message.objects.select_related("conversation").get(pk=reply_id)
            _after_commit_notify(reply, student=False)
    return bool(saved)


def draft_fail(*, reply_id: int, attempt: int, reason: str) -> bool:
    """Mark a draft failed so a teacher can see it and regenerate or write the reply."""
    with transaction.atomic():
        saved = Message.objects.filter(
            pk=reply_id, draft_attempt=attempt, status__in=(Message.Status.QUEUED, Message.Status.DRAFTING)
        ).update(status=Message.Status.FAILED, failure=reason[:300])
        if saved:
            reply = Message.objects.select_related("conversation").get(pk=reply_id)
            _after_commit_notify(reply, student=False)
    return bool(saved)


def drafts_heartbeat(*, reply_ids: list[int]) -> None:
    """The worker still drafts these replies (called every few seconds by the worker)."""
    Message.objects.filter(pk__in=reply_ids, status=Message.Status.DRAFTING).update(heartbeat_at=timezone.now())


def requeue_stuck_drafts(*, queued_for: float | None = None, silent_for: float | None = None) -> int:
    """Queue again the drafts the database says are owed but nobody is working on.

    The broker can lose a task (celery#3541) and a killed worker leaves its drafts in
    'drafting'. A queued reply is simply sent again: a duplicate task finds it claimed
    and does nothing. A silent 'drafting' reply gets a new attempt number, so that the
    old task, if it still runs somewhere, stops at its next step.
    """
    now = timezone.now()
    queued_for = queued_for or settings.TUTOR_DRAFT_STUCK_SECONDS
    silent_for = silent_for or settings.TUTOR_DRAFT_SILENT_SECONDS
    count = 0
    lost = Message.objects.filter(
        sender=Message.Sender.TUTOR, status=Message.Status.QUEUED, queued_at__lt=now - timedelta(seconds=queued_for)
    )
    for reply in lost:
        Message.objects.filter(pk=reply.pk, draft_attempt=reply.draft_attempt).update(queued_at=now)
        _after_commit_enqueue_draft(reply)
        count += 1
    silent = Message.objects.filter(
        sender=Message.Sender.TUTOR,
        status=Message.Status.DRAFTING,
        heartbeat_at__lt=now - timedelta(seconds=silent_for),
    ).select_related("conversation")
    for reply in silent:
        with transaction.atomic():
            moved = Message.objects.filter(
                pk=reply.pk, status=Message.Status.DRAFTING, draft_attempt=reply.draft_attempt
            ).update(status=Message.Status.QUEUED, draft_attempt=F("draft_attempt") + 1, queued_at=now)
            if moved:
                reply.refresh_from_db()
                _after_commit_enqueue_draft(reply)
                _after_commit_notify(reply, student=False)
                count += 1
    if count:
        log.warning("re-queued %d draft(s) that nobody was working on", count)
    return count


# Review: a teacher's decision. The conditional update on status decides races.

def _decide(reply: Message, reviewer: User, *, status: str, decision: str, final_text: str) -> Message:
    # Approving needs a finished draft; rejecting (perhaps with the teacher's own reply)
    # may also cut a draft short or answer a failed one.
    if status == Message.Status.APPROVED:
        decidable = (Message.Status.AWAITING_REVIEW,)
    else:
        decidable = PENDING_STATUSES
    with transaction.atomic():
        version = _next_version(reply.conversation_id)
        won = Message.objects.filter(pk=reply.pk, status__in=decidable).update(
            status=status,
            decision=decision,
            final_text=final_text,
            reviewed_by=reviewer,
            reviewed_at=timezone.now(),
            version=version,
        )
        if not won:
            raise ReviewConflict(_already_decided_message(reply.pk))
        reply.refresh_from_db()
        audit_record(
            actor=reviewer, action=f"review.{decision}", school=reply.conversation.classroom.school,
            target=f"reply {reply.pk}", details={"classroom": reply.conversation.classroom_id},
        )
        _after_commit_notify(reply)
    return reply


def _already_decided_message(reply_id: int) -> str:
    reply = Message.objects.select_related("reviewed_by").get(pk=reply_id)
    if reply.status in (Message.Status.APPROVED, Message.Status.REJECTED):
        return _("%(who)s already decided on this reply (%(decision)s).") % {
            "who": reply.reviewed_by or _("Another teacher"),
            "decision": reply.get_decision_display(),
        }
    return _("This draft is not ready for review any more (%(status)s).") % {"status": reply.get_status_display()}


def reply_approve(*, reply: Message, reviewer: User, text: str | None = None) -> Message:
    """Approve the draft as it is, or as the teacher edited it. The draft is kept."""
    final = reply.draft_text if text is None else text.strip()
    if not final:
        raise InvalidMessage(_("An approved reply cannot be empty."))
    if len(final) > settings.TUTOR_MAX_MESSAGE_CHARS * 2:
        raise InvalidMessage(_("The reply is too long."))
    decision = Message.Decision.AS_DRAFTED if final == reply.draft_text.strip() else Message.Decision.EDITED
    return _decide(reply, reviewer, status=Message.Status.APPROVED, decision=decision, final_text=final)


def reply_reject(*, reply: Message, reviewer: User, teacher_text: str = "") -> Message:
    """Reject the draft; the teacher may send their own reply instead."""
    teacher_text = (teacher_text or "").strip()
    if len(teacher_text) > settings.TUTOR_MAX_MESSAGE_CHARS * 2:
        raise InvalidMessage(_("The reply is too long."))
    decision = Message.Decision.TEACHER_REPLY if teacher_text else Message.Decision.REJECTED
    return _decide(reply, reviewer, status=Message.Status.REJECTED, decision=decision, final_text=teacher_text)


def reply_regenerate(*, reply: Message, reviewer: User, instruction: str = "") -> Message:
    """Replace the pending draft with a new one; the old draft goes to the history.

    A generation still running for the old attempt stops at its next step.
    """
    instruction = (instruction or "").strip()[:200]
    with transaction.atomic():
        current = Message.objects.select_for_update().get(pk=reply.pk)
        if current.status not in PENDING_STATUSES:
            raise ReviewConflict(_already_decided_message(reply.pk))
        history = list(current.previous_drafts)
        if current.draft_text or current.failure:
            history.append(
                {
                    "text": current.draft_text,
                    "failure": current.failure,
                    "model": current.model_name,
                    "drafted_at": current.drafted_at.isoformat() if current.drafted_at else None,
                    "instruction": current.regenerate_instruction,
                    "discarded_by": reviewer.pk,
                }
            )
        moved = Message.objects.filter(pk=current.pk, draft_attempt=current.draft_attempt).update(
            status=Message.Status.QUEUED,
            draft_attempt=F("draft_attempt") + 1,
            draft_text="",
            failure="",
            previous_drafts=history,
            regenerate_instruction=instruction,
            queued_at=timezone.now(),
            drafted_at=None,
            draft_started_at=None,
        )
        if not moved:
            raise ReviewConflict(_already_decided_message(reply.pk))
        current.refresh_from_db()
        audit_record(
            actor=reviewer, action="review.regenerate", school=reply.conversation.classroom.school,
            target=f"reply {reply.pk}", details={"instruction": instruction},
        )
        _after_commit_enqueue_draft(current)
        _after_commit_notify(current, student=False)
    return current


def delete_expired_conversations() -> int:
    """Delete each school's conversations older than its retention period."""
    from classrooms.models import School

    deleted = 0
    for school in School.objects.all():
        cutoff = timezone.now() - timedelta(days=school.retention_days)
        old = Conversation.objects.filter(classroom__school=school, updated_at__lt=cutoff)
        deleted += old.count()
        old.delete()
    return deleted
