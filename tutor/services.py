"""Writes of the tutoring domain: asking, drafting, reviewing.

Each change is atomic; where two actors can race (two teachers, a worker and a
teacher) it is a conditional update whose row count says who won. Events and tasks
are sent only after the transaction commits.

A student's own limits (the class's quotas, its opening hours and pause, the per-minute
rate) are checked in question_ask under the student's row lock, in the transaction that
saves the question: two tabs sending at the same instant take turns, and the second sees
the first's question. The class-wide cap on pending replies reads outside it: two
students may pass it by one; it protects the queue from floods, not a promise.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Collection
from datetime import datetime, timedelta

from django.conf import settings
from django.db import close_old_connections, connection, models, transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from classrooms.models import Classroom, School, User
from classrooms.selectors import (
    classroom_availability,
    classroom_model,
    model_for_new_reply,
    school_zone,
    student_chat_is_open,
)
from classrooms.services import audit_record
from tutor import events, grouping, metrics, model_settings
from tutor.models import Conversation, Message, QuestionGroup
from tutor.safeguarding import services as safeguarding
from tutor.safeguarding.classifier import CONCERN, URGENT
from tutor.selectors import PENDING_STATUSES, class_wait_estimates, reply_model_key, student_allowance, student_view
from tutor.text import clean_text, title_from

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


class ChatClosed(TutorError):
    """The school has not opened the tutor to its students (see student_chat_blockers)."""

    code = "closed"


class TutorPaused(ChatClosed):
    """The class's teacher paused the tutor (an exam)."""

    code = "paused"


class OutsideHours(ChatClosed):
    """Outside the class's opening hours; opens_at says when it opens again (None: never)."""

    code = "outside_hours"

    def __init__(self, message: str, opens_at: datetime | None = None):
        super().__init__(message)
        self.opens_at = opens_at


class QuotaReached(SlowDown):
    """One of the class's quotas per student is used up."""

    code = "quota"


def opening_text(classroom: Classroom, opens_at: datetime | None) -> str:
    """When the class opens again, in the school's time zone and the reader's language."""
    if opens_at is None:
        return _("The tutor is closed for this class. Ask your teacher when it opens.")
    local = timezone.localtime(opens_at, school_zone(classroom.school))
    return _("The tutor is closed now. It opens again on %(when)s.") % {"when": date_format(local, "l j F, H:i")}


def availability_refusal(classroom: Classroom, now: datetime | None = None) -> ChatClosed | None:
    """The refusal a student gets in a class that is paused or outside its hours, or None."""
    availability = classroom_availability(classroom, now)
    if availability.open:
        return None
    if availability.reason == "paused":
        return TutorPaused(
            _(
                "Your teacher has paused the tutor for now (for example during a test). You can ask again when they open it."
            )
        )
    return OutsideHours(opening_text(classroom, availability.opens_at), availability.opens_at)


def _refuse_over_limits(*, student: User, classroom: Classroom, now: datetime) -> None:
    """Raise the refusal for the first of the student's limits reached. Call inside the
    transaction holding the student's row lock (question_ask)."""
    refusal = availability_refusal(classroom, now)
    if refusal is not None:
        raise refusal
    recent = Message.objects.filter(
        conversation__student=student, sender=Message.Sender.STUDENT, created_at__gte=now - timedelta(minutes=1)
    ).count()
    if recent >= settings.TUTOR_MESSAGES_PER_MINUTE:
        raise SlowDown(_("You are sending messages very fast. Wait a minute, then try again."))
    allowance = student_allowance(student, classroom, now)
    quotas = allowance["quotas"]
    if not allowance["unanswered_left"]:
        raise QuotaReached(
            _(
                "Your teacher is still reviewing your earlier questions (at most %(n)d unanswered at once in this "
                "class). Wait for an answer first."
            )
            % {"n": quotas["unanswered"]}
        )
    if not allowance["day_left"]:
        raise QuotaReached(
            _("You have asked %(n)d questions today, the most this class allows. You can ask again tomorrow.")
            % {"n": quotas["per_day"]}
        )
    if not allowance["hour_left"]:
        local = timezone.localtime(allowance["hour_frees_at"], school_zone(classroom.school))
        raise QuotaReached(
            _(
                "You have asked %(n)d questions in the last hour, the most this class allows. You can ask again at %(time)s."
            )
            % {"n": quotas["per_hour"], "time": date_format(local, "H:i")}
        )


class ReviewConflict(TutorError):
    code = "conflict"


class ClaimConflict(ReviewConflict):
    """Another reviewer has this draft open (an unexpired claim)."""

    code = "claimed"

    def __init__(self, message: str, claimed_by: str = ""):
        super().__init__(message)
        self.claimed_by = claimed_by


def _send_draft_task(reply_id: int, attempt: int, model_key: str) -> None:
    from tutor.celery import app

    try:
        app.send_task(
            "inference.draft_reply",
            args=[reply_id, attempt],
            queue=model_settings.draft_queue(model_key),  # the workers of the reply's model
            retry=True,
            retry_policy={"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5},
        )
    except Exception:
        # The broker is down: the reply stays queued in the database and the
        # reconciler sends it again once the broker is back.
        log.exception("could not queue the draft of reply %s; the reconciler will", reply_id)


def _send_embed_task(question_id: int) -> None:
    from tutor.celery import app

    try:
        app.send_task("tutor.embed_question", args=[question_id], queue=settings.CELERY_HOUSEKEEPING_QUEUE)
    except Exception:
        # The topics page embeds what it finds without a vector.
        log.warning("could not queue the embedding of question %s", question_id)


def question_embed(*, question_id: int) -> bool:
    """Store a student's question's embedding for the class's topics page
    (selectors.class_topics), so that the page need not compute it. False when it has one
    already or is gone."""
    from tutor import embeddings

    text = (
        Message.objects.filter(pk=question_id, sender=Message.Sender.STUDENT, topic_vector__isnull=True)
        .values_list("text", flat=True)
        .first()
    )
    if not text:
        return False
    vector = embeddings.to_bytes(embeddings.embed_queries([text])[0])
    return bool(Message.objects.filter(pk=question_id, topic_vector__isnull=True).update(topic_vector=vector))


def _after_commit_enqueue_draft(reply: Message) -> None:
    reply_id, attempt, model_key = reply.id, reply.draft_attempt, reply_model_key(reply)
    transaction.on_commit(lambda: _send_draft_task(reply_id, attempt, model_key))
    transaction.on_commit(lambda: metrics.draft_event("queued"))


def draft_send(*, reply_id: int, attempt: int) -> str:
    """Send the draft task to the workers of the reply's model (a worker of another model
    received it: sent before the model was chosen, or by an older version). Returns the key."""
    reply = Message.objects.select_related("conversation__classroom__school").get(pk=reply_id)
    model_key = reply_model_key(reply)
    _send_draft_task(reply_id, attempt, model_key)
    return model_key


def _tell_student(conversation_id: int) -> None:
    """Send the student's sockets the conversation's latest change, read through the gate
    once here rather than once per socket."""
    try:
        version = Conversation.objects.values_list("version", flat=True).get(pk=conversation_id)
        changed = Message.objects.filter(conversation_id=conversation_id, version=version).order_by("created_at", "id")
        messages = [student_view(m) for m in changed]
    except Exception:  # e.g. deleted meanwhile: a bare nudge makes each socket re-read
        log.exception("could not read conversation %s for its student", conversation_id)
        events.conversation_changed(conversation_id)
        return
    events.conversation_changed(conversation_id, since=version - 1, version=version, messages=messages)


def _after_commit_notify(reply: Message, student: bool = True, reviewers: bool = True) -> None:
    conversation_id, classroom_id, reply_id = reply.conversation_id, reply.conversation.classroom_id, reply.id
    if student:
        transaction.on_commit(lambda: _tell_student(conversation_id))
    if reviewers:
        transaction.on_commit(lambda: events.review_item_changed(classroom_id, reply_id))


WAIT_NUDGE_SECONDS = 3.0  # a busy class moves its queue many times a second
_wait_nudge_lock = threading.Lock()
_wait_nudge_due: dict[int, threading.Timer] = {}


def _after_commit_waits_changed(classroom_id: int, conversation_ids: list[int] | None = None) -> None:
    """After commit, nudge the students still waiting in the class (or these conversations)
    to re-read their wait estimate. The nudge carries no text. Class-wide nudges are sent
    at most once per WAIT_NUDGE_SECONDS: each makes every waiting socket read the queue."""

    def send():
        if conversation_ids is None:
            with _wait_nudge_lock:
                _wait_nudge_due.pop(classroom_id, None)
        try:
            # Worked out once here for the whole class, not once per waiting socket.
            events.waits_changed(class_wait_estimates(classroom_id, conversation_ids))
        except Exception:  # an estimate is a courtesy; the next change sends it again
            log.exception("could not send wait estimates for class %s", classroom_id)
        finally:
            if conversation_ids is None:
                close_old_connections()  # the timer's thread

    def send_soon():
        with _wait_nudge_lock:
            if classroom_id in _wait_nudge_due:
                return  # one is already due; it will read the queue as it is then
            timer = threading.Timer(WAIT_NUDGE_SECONDS, send)
            timer.daemon = True
            _wait_nudge_due[classroom_id] = timer
        timer.start()

    transaction.on_commit(send if conversation_ids is not None else send_soon)


def conversation_start(*, student: User, classroom: Classroom, title: str = "") -> Conversation:
    return Conversation.objects.create(student=student, classroom=classroom, title=title[:120])


def question_ask(*, conversation: Conversation, text: str, client_id: str = "") -> tuple[Message, bool]:
    """The student asks; a reply is queued for drafting. Returns (question, created).

    The same client_id twice returns the first question: a message typed offline and
    re-sent on reconnect is saved once. The safeguarding classifier reads the question
    here, before it is saved: a concern is sorted first and never grouped; an urgent
    message raises its alert and sends the school's supportive message in the same
    transaction (tutor.safeguarding.services.alert_raise), whether or not a drafting
    worker is up.

    Refuses (TutorError, nothing saved) outside the class's opening hours, while its
    teacher has paused it, and past its quotas per student; an urgent message is saved
    all the same.
    """
    text = clean_text(text)
    client_id = clean_text(client_id)[:64]
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
    if not student_chat_is_open(conversation.classroom.school):
        raise ChatClosed(_("Your school has not opened the tutor to students yet. Ask your teacher."))
    student = conversation.student
    class_waiting = Message.objects.filter(
        conversation__classroom_id=conversation.classroom_id,
        sender=Message.Sender.TUTOR,
        status__in=PENDING_STATUSES,
    ).count()
    if class_waiting >= settings.TUTOR_MAX_PENDING_PER_CLASS:
        raise SlowDown(_("Your teacher has many questions to review right now. Try again in a few minutes."))

    assessment = safeguarding.assess_message(text, school_id=conversation.classroom.school_id)
    distressed = assessment.tier >= CONCERN
    with transaction.atomic():
        # The student's row lock: two tabs asking at once take turns, and each sees the
        # other's question when it counts the quotas.
        list(User.objects.select_for_update().filter(pk=student.pk).values_list("pk", flat=True))
        if assessment.tier < URGENT:
            # An urgent message is always saved and raises its alert: a student in danger
            # is never told to wait for the class's hours or quota.
            # Read afresh: a socket's conversation may predate the teacher's pause.
            classroom = Classroom.objects.select_related("school").get(pk=conversation.classroom_id)
            _refuse_over_limits(student=student, classroom=classroom, now=timezone.now())
        opens = not conversation.messages.exists()
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
            model_key=model_for_new_reply(conversation.classroom, draw=random.random()),
            distressed=distressed,
            safety_tier=assessment.tier,
            safety_category=assessment.category if distressed else "",
            question_key=grouping.groupable_key(text, opens_conversation=opens, distressed=distressed),
        )
        if assessment.tier >= URGENT:
            safeguarding.alert_raise(question=question, reply=reply, assessment=assessment)
        if not conversation.title:
            Conversation.objects.filter(pk=conversation.pk).update(title=title_from(text))
        # The fast path: a pending question of the class with the same normal form is
        # answered together with this one, and this one needs no draft of its own.
        if not (reply.question_key and _join_same_text(reply)):
            _after_commit_enqueue_draft(reply)
        _after_commit_notify(reply)
        question_id = question.id
        transaction.on_commit(lambda: _send_embed_task(question_id))
    log.info("question %s asked in conversation %s; reply %s queued", question.pk, conversation.pk, reply.pk)
    return question, True


# Alike questions: one review for a group (see tutor.models.QuestionGroup).

JOINABLE_LEAD_STATUSES = Message.REVIEWABLE_STATUSES  # a question still waiting for its own review


def _lock_grouping(classroom_id: int) -> None:
    """Take the class's grouping lock (its row) so that two alike questions arriving at
    once cannot each join the other; call inside a transaction."""
    list(Classroom.objects.select_for_update().filter(pk=classroom_id).values_list("pk", flat=True))


def _group_candidates(classroom_id: int, *, before_id: int) -> list[Message]:
    """Pending questions of the class asked before this reply that it may join: groupable,
    not split out, not themselves members of a group, oldest first. Only earlier ones: the
    first asker leads, and two questions can never each join the other."""
    return list(
        Message.objects.filter(
            conversation__classroom_id=classroom_id,
            sender=Message.Sender.TUTOR,
            status__in=JOINABLE_LEAD_STATUSES,
            group_opt_out=False,
        )
        .exclude(question_key="")
        .filter(pk__lt=before_id)
        .select_related("in_reply_to")
        .order_by("created_at", "id")[:200]
    )


def _join_group(reply: Message, *, lead_id: int) -> QuestionGroup | None:
    """Make `reply` (queued or drafting, no group) a member of the group `lead_id` leads,
    creating the group on its first member. None if either has moved on. Call inside a
    transaction holding the class's grouping lock."""
    lead = Message.objects.select_for_update().filter(pk=lead_id).first()
    if lead is None or lead.status not in JOINABLE_LEAD_STATUSES or lead.group_opt_out or not lead.question_key:
        return None
    if lead.group_id is not None and not QuestionGroup.objects.filter(pk=lead.group_id, lead=lead).exists():
        return None  # a member of another group (cannot happen while the lock is held)
    with transaction.atomic():  # a savepoint: nothing is left behind unless the reply joins
        group = QuestionGroup.objects.filter(lead=lead).first()
        if group is None:
            group = QuestionGroup.objects.create(classroom_id=reply.conversation.classroom_id, lead=lead)
            Message.objects.filter(pk=lead.pk).update(group=group)
        # Conditional: a reviewer may have decided this reply (or regenerated it) meanwhile.
        joined = Message.objects.filter(
            pk=reply.pk,
            draft_attempt=reply.draft_attempt,
            group__isnull=True,
            status__in=(Message.Status.QUEUED, Message.Status.DRAFTING),
        ).update(status=Message.Status.GROUPED, group=group, draft_started_at=None, heartbeat_at=None)
        if not joined:
            transaction.set_rollback(True)
            return None
    classroom_id, reply_id, conversation_id = reply.conversation.classroom_id, reply.pk, reply.conversation_id
    transaction.on_commit(lambda: events.review_item_changed(classroom_id, lead_id))
    transaction.on_commit(lambda: events.review_item_changed(classroom_id, reply_id))
    _after_commit_waits_changed(classroom_id, [conversation_id])
    return group


def _join_same_text(reply: Message) -> QuestionGroup | None:
    """The fast path at asking time: join a pending question with the same normal form."""
    classroom_id = reply.conversation.classroom_id
    _lock_grouping(classroom_id)
    for candidate in _group_candidates(classroom_id, before_id=reply.pk):
        if candidate.question_key == reply.question_key:
            return _join_group(reply, lead_id=candidate.pk)
    return None


def reply_group_alike(
    *,
    reply_id: int,
    attempt: int,
    vector: list[float] | None,
    threshold: float,
    embed: grouping.Embed | None = None,
) -> Message | None:
    """In the worker, before drafting: if a pending question of the class asks the same
    thing, the reply joins its group and needs no draft. Returns the group's lead, or None
    (draft it).

    `vector` is the question's sentence embedding (None while the model is not loaded:
    then only the normal form is compared); `embed` embeds candidates that have none yet.
    """
    with transaction.atomic():
        reply = (
            Message.objects.select_related("conversation", "in_reply_to")
            .filter(pk=reply_id, draft_attempt=attempt, status=Message.Status.DRAFTING)
            .first()
        )
        if reply is None or not reply.question_key or reply.group_opt_out or reply.group_id is not None:
            return None
        if vector is not None:
            Message.objects.filter(pk=reply_id).update(question_vector=vector)
        if threshold <= 0:
            vector = None  # grouping by meaning is off: the normal form only
        _lock_grouping(reply.conversation.classroom_id)
        messages = {m.pk: m for m in _group_candidates(reply.conversation.classroom_id, before_id=reply_id)}
        candidates = [
            grouping.Candidate(reply_id=m.pk, key=m.question_key, text=m.in_reply_to.text, vector=m.question_vector)
            for m in messages.values()
        ]
        match, score = grouping.find_alike(
            key=reply.question_key,
            text=reply.in_reply_to.text,
            vector=vector,
            candidates=candidates,
            threshold=threshold,
            embed=embed,
        )
        if match is None:
            return None
        if _join_group(reply, lead_id=match.reply_id) is None:
            return None
        log.info("reply %s joins the group of reply %s (similarity %.3f)", reply_id, match.reply_id, score)
        return messages[match.reply_id]


# Drafting: called by the worker's task, which carries (reply_id, attempt).


def draft_start(*, reply_id: int, attempt: int) -> Message | None:
    """Claim a queued reply for drafting. None if it is no longer owed (already drafted,
    decided, regenerated since): a redelivered task then does nothing."""
    now = timezone.now()
    claimed = Message.objects.filter(pk=reply_id, draft_attempt=attempt, status=Message.Status.QUEUED).update(
        status=Message.Status.DRAFTING, draft_started_at=now, heartbeat_at=now
    )
    if not claimed:
        return None
    metrics.draft_event("started")
    reply = Message.objects.select_related("conversation__classroom", "in_reply_to").get(pk=reply_id)
    transaction.on_commit(lambda: events.review_item_changed(reply.conversation.classroom_id, reply_id))
    return reply


def draft_is_wanted(*, reply_id: int, attempt: int) -> bool:
    """False once a teacher rejected or regenerated the reply, or the conversation was deleted."""
    return Message.objects.filter(pk=reply_id, draft_attempt=attempt, status=Message.Status.DRAFTING).exists()


def draft_finish(
    *,
    reply_id: int,
    attempt: int,
    text: str,
    model_name: str,
    generation_settings: dict,
    mean_token_prob: float | None = None,
    checks: dict | None = None,
    discarded: list[dict] | None = None,
) -> bool:
    """Save the finished draft for review. False if the reply moved on meanwhile.

    `checks`: what tutor.checks found in `text`. `discarded`: drafts the pipeline made and
    replaced by itself (the automatic retry), kept in the reply's history."""
    with transaction.atomic():
        changes = {}
        if discarded:
            history = Message.objects.filter(pk=reply_id).values_list("previous_drafts", flat=True).first() or []
            changes["previous_drafts"] = list(history) + discarded
        saved = Message.objects.filter(pk=reply_id, draft_attempt=attempt, status=Message.Status.DRAFTING).update(
            status=Message.Status.AWAITING_REVIEW,
            draft_text=clean_text(text),
            model_name=model_name[:200],
            generation_settings=generation_settings,
            mean_token_prob=mean_token_prob,
            checks=checks or {},
            drafted_at=timezone.now(),
            failure="",
            **changes,
        )
        if saved:
            reply = Message.objects.select_related("conversation").get(pk=reply_id)
            _after_commit_notify(reply, student=False)
            waited = (reply.drafted_at - reply.created_at).total_seconds()
            transaction.on_commit(lambda: metrics.draft_finished(waited_s=waited))
    return bool(saved)


def draft_fail(*, reply_id: int, attempt: int, reason: str) -> bool:
    """Mark a draft failed so a teacher can see it and regenerate or write the reply."""
    with transaction.atomic():
        saved = Message.objects.filter(
            pk=reply_id, draft_attempt=attempt, status__in=(Message.Status.QUEUED, Message.Status.DRAFTING)
        ).update(status=Message.Status.FAILED, failure=reason[:300])
        if saved:
            transaction.on_commit(lambda: metrics.draft_event("failed"))
            reply = Message.objects.select_related("conversation").get(pk=reply_id)
            _after_commit_notify(reply, student=False)
    return bool(saved)


def draft_postpone(*, reply_id: int, attempt: int, reason: str) -> bool:
    """The model cannot draft now (its server does not answer, is busy): the reply goes
    back to the queue with the reason for its teachers, and the reconciler tries it again
    after TUTOR_DRAFT_RETRY_SECONDS. False if the reply moved on meanwhile."""
    with transaction.atomic():
        saved = Message.objects.filter(pk=reply_id, draft_attempt=attempt, status=Message.Status.DRAFTING).update(
            status=Message.Status.QUEUED,
            failure=reason[:300],
            queued_at=timezone.now(),
            draft_started_at=None,
            heartbeat_at=None,
        )
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
    'drafting'. A queued reply is simply sent again (to its model's queue): a duplicate
    task finds it claimed and does nothing. One whose model server did not answer
    (draft_postpone) is sent again after TUTOR_DRAFT_RETRY_SECONDS. A silent 'drafting' reply gets a new attempt number, so that the
    old task, if it still runs somewhere, stops at its next step.
    """
    now = timezone.now()
    queued_for = queued_for or settings.TUTOR_DRAFT_STUCK_SECONDS
    silent_for = silent_for or settings.TUTOR_DRAFT_SILENT_SECONDS
    count = 0
    lost = (
        Message.objects.filter(sender=Message.Sender.TUTOR, status=Message.Status.QUEUED)
        .filter(
            Q(queued_at__lt=now - timedelta(seconds=queued_for))
            # Waiting for a model server that did not answer (draft_postpone): sooner.
            | (~Q(failure="") & Q(queued_at__lt=now - timedelta(seconds=settings.TUTOR_DRAFT_RETRY_SECONDS)))
        )
        .select_related("conversation__classroom__school")
    )
    for reply in lost:
        Message.objects.filter(pk=reply.pk, draft_attempt=reply.draft_attempt).update(queued_at=now)
        _after_commit_enqueue_draft(reply)
        metrics.draft_requeued("lost")
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
                metrics.draft_requeued("silent")
                count += 1
    # Members of a group whose lead is gone (its conversation deleted) or was decided
    # without them (a decision hands those on itself: _hand_on): each is drafted on its own.
    orphans = (
        Message.objects.filter(sender=Message.Sender.TUTOR, status=Message.Status.GROUPED)
        .filter(Q(group__isnull=True) | ~Q(group__lead__status__in=JOINABLE_LEAD_STATUSES))
        .select_related("conversation")
    )
    for reply in orphans:
        with transaction.atomic():
            moved = Message.objects.filter(
                pk=reply.pk, status=Message.Status.GROUPED, draft_attempt=reply.draft_attempt
            ).update(status=Message.Status.QUEUED, group=None, draft_attempt=F("draft_attempt") + 1, queued_at=now)
            if moved:
                reply.refresh_from_db()
                _after_commit_enqueue_draft(reply)
                _after_commit_notify(reply, student=False)
                metrics.draft_requeued("orphaned")
                count += 1
    if count:
        log.warning("re-queued %d draft(s) that nobody was working on", count)
    return count


# Review: a teacher's decision. The conditional update on status decides races; a draft
# that another reviewer has open (an unexpired claim) is theirs.
#
# Alike questions: a decision answers the questions that the reviewer's card displayed,
# and no others. The card sends back the ids of the group's other questions it showed
# (`members`); the decision answers those still waiting in the group, in the transaction
# whose conditional update on the card's reply settles the race. Questions that joined
# after the card was opened, and those the teacher left out, keep waiting and are handed
# on as a card of their own (_hand_on). Freezing a group when a reviewer claims its lead
# was the other way, not taken: a claim is a courtesy lease that the page takes (and may
# fail to take), that lapses while the teacher looks away, and that a plain form never
# takes, so it cannot say what the teacher saw; only the card can.
# The teacher's own words (their reply instead of the draft, or an edit that adds words)
# go only to the student whose card it was, unless the teacher sends them to all.


def _claim_free(reviewer: User, now: datetime) -> Q:
    """Rows nobody else holds: no claim, this reviewer's own, or an expired one."""
    return Q(claimed_by__isnull=True) | Q(claimed_by=reviewer) | Q(claimed_until__lt=now)


def _refusal(reply_id: int, reviewer: User) -> ReviewConflict:
    """Why a review action on this reply lost: decided already, or another reviewer has it open."""
    reply = Message.objects.select_related("claimed_by").filter(pk=reply_id).first()
    now = timezone.now()
    if (
        reply is not None
        and reply.is_pending
        and reply.claimed_by_id
        and reply.claimed_by_id != reviewer.pk
        and reply.claimed_until
        and reply.claimed_until >= now
    ):
        who = str(reply.claimed_by)
        return ClaimConflict(
            _("%(who)s is reviewing this draft right now; it is theirs for up to %(s)d more seconds.")
            % {"who": who, "s": max(1, int((reply.claimed_until - now).total_seconds()))},
            claimed_by=who,
        )
    return ReviewConflict(_already_decided_message(reply_id))


class _SecondsSince(models.Func):
    """Seconds from a datetime column to `now`, worked out by the database."""

    output_field = models.FloatField()

    def __init__(self, now: datetime, column: str):
        super().__init__(Value(now, output_field=models.DateTimeField()), F(column))

    def as_sql(self, compiler: object, connection: object, **extra: object) -> tuple:  # PostgreSQL
        return super().as_sql(
            compiler, connection, template="EXTRACT(EPOCH FROM (%(expressions)s))", arg_joiner=" - ", **extra
        )

    def as_sqlite(self, compiler: object, connection: object, **extra: object) -> tuple:
        # Django's own function (microseconds); julianday() keeps only milliseconds.
        return super().as_sql(
            compiler, connection, template="(django_timestamp_diff(%(expressions)s) / 1000000.0)", **extra
        )


def _review_seconds(reviewer: User, now: datetime) -> Case:
    """Opened -> decided, when this reviewer opened it (within the hour), else None; in
    the decision's own update, so that it costs no read."""
    opened_by_them = Q(claimed_by=reviewer, review_opened_at__lte=now, review_opened_at__gte=now - timedelta(hours=1))
    return Case(
        When(opened_by_them, then=_SecondsSince(now, "review_opened_at")),
        default=Value(None),
        output_field=models.FloatField(),
    )


class _CardChanged(Exception):
    """The reply joined or left a group after the card's reply was read: decide again on
    the fresh row."""

    def __init__(self, fresh: Message):
        super().__init__(fresh.pk)
        self.fresh = fresh


def _decide(
    reply: Message,
    reviewer: User,
    *,
    status: str,
    decision: str,
    final_text: str,
    members: Collection[int] = (),
    share: bool = True,
) -> Message:
    """Record a reviewer's decision on the card's reply and, when it leads a group, on the
    group's questions that the card displayed (`members`) and that still wait in it; with
    `share` False (the teacher's own words) on the card's reply alone. The group's other
    questions are handed on (see _hand_on). Each answered student gets the decision in
    their own conversation; one audit line names every reply it answered.

    `reply` is the card's reply as this request read it; if it joined or left a group
    since, the decision is taken again on the fresh row. Raises ReviewConflict when another
    reviewer decided first or has it open. The returned reply carries `answered` and
    `handed_on`: the ids of the replies this decision answered, and of those it handed on.
    """
    for _attempt in range(3):
        try:
            with transaction.atomic():
                return _decide_once(
                    reply,
                    reviewer,
                    status=status,
                    decision=decision,
                    final_text=final_text,
                    members=members,
                    share=share,
                )
        except _CardChanged as changed:
            reply = changed.fresh
    raise ReviewConflict(_already_decided_message(reply.pk))


def _bump_versions(conversation_ids: Collection[int]) -> dict[int, int]:
    """Bump each conversation's version once, in one statement; conversation id -> its new
    version. Call inside a transaction: the rows stay locked until it ends."""
    ids = sorted(set(conversation_ids))
    if not ids:
        return {}
    table = connection.ops.quote_name(Conversation._meta.db_table)
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET version = version + 1, updated_at = %s "
            f"WHERE id IN ({', '.join(['%s'] * len(ids))}) RETURNING id, version",
            [now, *ids],
        )
        return dict(cursor.fetchall())


def _next_version(conversation_id: int) -> int:
    """Bump and return the conversation's version; call inside a transaction."""
    return _bump_versions([conversation_id])[conversation_id]


def _decide_once(
    reply: Message,
    reviewer: User,
    *,
    status: str,
    decision: str,
    final_text: str,
    members: Collection[int],
    share: bool,
) -> Message:
    # Approving needs a finished draft; rejecting (perhaps with the teacher's own reply)
    # may also cut a draft short or answer a failed one.
    decidable = (Message.Status.AWAITING_REVIEW,) if status == Message.Status.APPROVED else PENDING_STATUSES
    now = timezone.now()
    member = reply.status == Message.Status.GROUPED  # one member answered on its own
    led = reply.group_id if not member else None  # the group this reply leads, if any
    changes = {
        "status": status,
        "decision": decision,
        "final_text": final_text,
        "reviewed_by": reviewer,
        "reviewed_at": now,
        "claimed_by": None,
        "claimed_until": None,
        "version": _bump_versions([reply.conversation_id])[reply.conversation_id],
    }
    if member:
        changes.update(group=None, group_opt_out=True)
    # Won only by the reply as the card knew it: in the same group, lead or member alike.
    as_read = Q(group_id=reply.group_id) if reply.group_id else Q(group__isnull=True)
    as_read &= Q(status=Message.Status.GROUPED) if member else ~Q(status=Message.Status.GROUPED)
    # For the metrics, the rule of _review_seconds on the row as this request read it
    # (the database works out the stored figure itself, at no read).
    opened_at = reply.review_opened_at if reply.claimed_by_id == reviewer.pk else None
    review_s = (now - opened_at).total_seconds() if opened_at else None
    review_s = review_s if review_s is not None and 0 <= review_s <= 3600 else None
    waited = (now - reply.created_at).total_seconds()
    won = (
        Message.objects.filter(as_read, pk=reply.pk, status__in=decidable)
        .filter(_claim_free(reviewer, now))
        .update(review_seconds=_review_seconds(reviewer, now), **changes)
    )
    if not won:
        fresh = Message.objects.select_related("conversation__classroom").filter(pk=reply.pk).first()
        if (
            fresh is not None
            and fresh.status in decidable
            and (fresh.group_id, fresh.status)
            != (
                reply.group_id,
                reply.status,
            )
        ):
            raise _CardChanged(fresh)
        raise _refusal(reply.pk, reviewer)
    transaction.on_commit(lambda: metrics.reply_decided(decision=decision, waited_s=waited, review_s=review_s))
    for field, value in changes.items():
        setattr(reply, field, value)
    reply.__dict__.pop("review_seconds", None)  # worked out by the database: read when asked for
    answered, handed_on = [reply], []
    classroom = reply.conversation.classroom
    if led is not None:
        # The lead's row is decided and locked: nobody joins the group any more.
        waiting = list(
            Message.objects.select_for_update()
            .filter(group_id=led, status=Message.Status.GROUPED)
            .order_by("created_at", "id")
        )
        shown = set(members) if share else set()
        chosen = [m for m in waiting if m.pk in shown]
        if chosen:
            versions = _bump_versions([m.conversation_id for m in chosen])
            for m in chosen:
                m.status, m.decision, m.final_text, m.version = (
                    status,
                    decision,
                    final_text,
                    versions[m.conversation_id],
                )
            done = Message.objects.filter(
                pk__in=[m.pk for m in chosen], group_id=led, status=Message.Status.GROUPED
            ).update(
                status=status,
                decision=decision,
                final_text=final_text,
                draft_text=reply.draft_text,
                model_key=reply.model_key,
                model_name=reply.model_name,
                reviewed_by=reviewer,
                reviewed_at=now,
                version=Case(
                    *[When(pk=m.pk, then=Value(m.version)) for m in chosen],
                    output_field=models.PositiveBigIntegerField(),
                ),
            )
            if done != len(chosen):  # the rows are locked: only a bug gets here
                raise ReviewConflict(_("The group changed meanwhile; nothing was sent. Try again."))
            answered += chosen
        left = [m for m in waiting if m.pk not in shown]
        if left:
            handed_on = _hand_on(left, lead=reply)
    details = {"classroom": classroom.id}
    if led is not None:
        details["group"] = led
        details["answered"] = [m.pk for m in answered]
    if handed_on:
        details["handed_on"] = handed_on
    audit_record(
        actor=reviewer,
        action=f"review.{decision}",
        school=_school_of(classroom),
        target=f"reply {reply.pk}",
        details=details,
    )
    _after_commit_answered(classroom.id, answered)
    _after_commit_waits_changed(classroom.id)
    reply.answered = [m.pk for m in answered]
    reply.handed_on = handed_on
    return reply


def _school_of(classroom: Classroom) -> School:
    """The class's school for its audit line, which needs only the id: no read for it."""
    cached = classroom._state.fields_cache.get("school")
    return cached if cached is not None else School(pk=classroom.school_id)


def _after_commit_answered(classroom_id: int, replies: list[Message]) -> None:
    """After commit: each student gets their decided reply, read through the gate from the
    row as this transaction wrote it (no read per student), and reviewers drop the cards."""

    def send():
        for reply in replies:
            try:
                view = student_view(reply)
            except Exception:  # a bare nudge makes the student's sockets re-read
                log.exception("could not render reply %s for its student", reply.pk)
                events.conversation_changed(reply.conversation_id)
            else:
                events.conversation_changed(
                    reply.conversation_id, since=reply.version - 1, version=reply.version, messages=[view]
                )
            events.review_item_changed(classroom_id, reply.pk, decided=True)

    transaction.on_commit(send)


def _hand_on(waiting: list[Message], *, lead: Message) -> list[int]:
    """The questions of a decided group that the decision did not answer keep waiting, as a
    group of their own: the first asker among them leads it, a new card for the teacher,
    with a copy of the group's draft (alike questions would get the same draft again), or
    a draft of its own when the group had none yet. Call inside the decision's transaction,
    with the rows locked. Returns their reply ids."""
    classroom_id = lead.conversation.classroom_id
    new_lead, others = waiting[0], waiting[1:]
    group = QuestionGroup.objects.create(classroom_id=classroom_id, lead=new_lead) if others else None
    if others:
        Message.objects.filter(pk__in=[m.pk for m in others], status=Message.Status.GROUPED).update(group=group)
    mine = Message.objects.filter(pk=new_lead.pk, status=Message.Status.GROUPED)
    if not lead.draft_text:
        new_lead.draft_attempt += 1
        new_lead.model_key = classroom_model(lead.conversation.classroom)
        mine.update(
            status=Message.Status.QUEUED,
            group=group,
            model_key=new_lead.model_key,
            draft_attempt=new_lead.draft_attempt,
            queued_at=timezone.now(),
            draft_started_at=None,
            heartbeat_at=None,
        )
        _after_commit_enqueue_draft(new_lead)
    else:
        mine.update(
            status=Message.Status.AWAITING_REVIEW,
            group=group,
            draft_text=lead.draft_text,
            model_key=lead.model_key,
            model_name=lead.model_name,
            mean_token_prob=lead.mean_token_prob,
            checks=lead.checks,
            generation_settings=lead.generation_settings,
            drafted_at=lead.drafted_at,
            failure="",
        )
    transaction.on_commit(lambda: events.review_item_changed(classroom_id, new_lead.pk))
    _after_commit_waits_changed(classroom_id, [m.conversation_id for m in waiting])
    return [m.pk for m in waiting]


def _already_decided_message(reply_id: int) -> str:
    reply = Message.objects.select_related("reviewed_by").get(pk=reply_id)
    if reply.status in Message.DECIDED_STATUSES:
        return _("%(who)s already decided on this reply (%(decision)s).") % {
            "who": reply.reviewed_by or _("Another teacher"),
            "decision": reply.get_decision_display(),
        }
    return _("This draft is not ready for review any more (%(status)s).") % {"status": reply.get_status_display()}


def _take_group_draft(member: Message) -> Message:
    """A member answered on its own: it leaves its group with a copy of the group's draft,
    ready to approve. Call inside a transaction."""
    lead = Message.objects.filter(led_group__pk=member.group_id).first() if member.group_id else None
    if lead is None or lead.status != Message.Status.AWAITING_REVIEW:
        raise ReviewConflict(_("The group's draft is not ready yet."))
    moved = Message.objects.filter(pk=member.pk, status=Message.Status.GROUPED, group_id=member.group_id).update(
        status=Message.Status.AWAITING_REVIEW,
        draft_text=lead.draft_text,
        model_key=lead.model_key,
        model_name=lead.model_name,
        mean_token_prob=lead.mean_token_prob,
        checks=lead.checks,
        drafted_at=lead.drafted_at,
        group=None,
        group_opt_out=True,
    )
    if not moved:
        raise ReviewConflict(_already_decided_message(member.pk))
    return Message.objects.select_related("conversation__classroom").get(pk=member.pk)


def reply_approve(
    *,
    reply: Message,
    reviewer: User,
    text: str | None = None,
    members: Collection[int] = (),
    to_all: bool = False,
) -> Message:
    """Approve the draft as it is, or as the teacher edited it. The draft is kept.

    On a group's lead it also answers the group's questions that the card displayed
    (`members`: their reply ids), unless the edit adds the teacher's own words
    (grouping.adds_own_words): those go to this student alone unless `to_all`. On a
    member, that student alone (with the group's draft, or the teacher's edit of it).
    See _decide for the rest of the contract.
    """
    if reply.status != Message.Status.AWAITING_REVIEW:  # not approvable as read: perhaps stale
        reply = Message.objects.select_related("conversation__classroom").get(pk=reply.pk)
    if reply.status == Message.Status.GROUPED:
        with transaction.atomic():
            return _approve(_take_group_draft(reply), reviewer, text, members=(), to_all=False)
    return _approve(reply, reviewer, text, members=members, to_all=to_all)


def _approve(reply: Message, reviewer: User, text: str | None, *, members: Collection[int], to_all: bool) -> Message:
    final = clean_text(reply.draft_text if text is None else text)
    if not final:
        raise InvalidMessage(_("An approved reply cannot be empty."))
    if len(final) > settings.TUTOR_MAX_MESSAGE_CHARS * 2:
        raise InvalidMessage(_("The reply is too long."))
    decision = Message.Decision.AS_DRAFTED if final == clean_text(reply.draft_text) else Message.Decision.EDITED
    own_words = decision == Message.Decision.EDITED and grouping.adds_own_words(reply.draft_text, final)
    return _decide(
        reply,
        reviewer,
        status=Message.Status.APPROVED,
        decision=decision,
        final_text=final,
        members=members,
        share=to_all or not own_words,
    )


def reply_reject(
    *,
    reply: Message,
    reviewer: User,
    teacher_text: str = "",
    members: Collection[int] = (),
    to_all: bool = False,
) -> Message:
    """Reject the draft; the teacher may send their own reply instead.

    On a group's lead, a rejection without a reply declines each question the card
    displayed (`members`); the teacher's own reply goes to this student alone unless
    `to_all`. On a member, that student alone. See _decide for the rest of the contract.
    """
    teacher_text = clean_text(teacher_text)
    if len(teacher_text) > settings.TUTOR_MAX_MESSAGE_CHARS * 2:
        raise InvalidMessage(_("The reply is too long."))
    decision = Message.Decision.TEACHER_REPLY if teacher_text else Message.Decision.REJECTED
    return _decide(
        reply,
        reviewer,
        status=Message.Status.REJECTED,
        decision=decision,
        final_text=teacher_text,
        members=members,
        share=to_all or not teacher_text,
    )


def reply_regenerate(*, reply: Message, reviewer: User, instruction: str = "") -> Message:
    """Replace the pending draft with a new one; the old draft goes to the history.

    A generation still running for the old attempt stops at its next step. A group's
    members keep waiting for the new draft: regenerating answers nobody, so it needs no
    list of the members the card showed; the decision on the new draft carries its own.
    A member asks for a draft of its own (it leaves its group: see reply_split).
    """
    instruction = clean_text(instruction)[:200]
    if Message.objects.filter(pk=reply.pk, status=Message.Status.GROUPED).exists():
        return reply_split(reply=reply, reviewer=reviewer, instruction=instruction)
    with transaction.atomic():
        current = Message.objects.select_for_update().get(pk=reply.pk)
        if current.status not in PENDING_STATUSES or current.status == Message.Status.GROUPED:
            raise ReviewConflict(_already_decided_message(reply.pk))
        if not Message.objects.filter(pk=current.pk).filter(_claim_free(reviewer, timezone.now())).exists():
            raise _refusal(current.pk, reviewer)
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
            checks={},
            failure="",
            previous_drafts=history,
            regenerate_instruction=instruction,
            queued_at=timezone.now(),
            drafted_at=None,
            draft_started_at=None,
            model_key=classroom_model(current.conversation.classroom),  # the teacher may have chosen another
        )
        if not moved:
            raise ReviewConflict(_already_decided_message(reply.pk))
        current.refresh_from_db()
        audit_record(
            actor=reviewer,
            action="review.regenerate",
            school=reply.conversation.classroom.school,
            target=f"reply {reply.pk}",
            details={"instruction": instruction},
        )
        _after_commit_enqueue_draft(current)
        _after_commit_notify(current, student=False)
    return current


def _requeue_member(member: Message, *, instruction: str = "") -> bool:
    """A member leaves its group to be drafted on its own (never grouped again)."""
    moved = Message.objects.filter(pk=member.pk, status=Message.Status.GROUPED).update(
        status=Message.Status.QUEUED,
        group=None,
        group_opt_out=True,
        draft_attempt=F("draft_attempt") + 1,
        queued_at=timezone.now(),
        regenerate_instruction=instruction,
        model_key=classroom_model(member.conversation.classroom),
    )
    if moved:
        member.refresh_from_db()
        _after_commit_enqueue_draft(member)
        _after_commit_notify(member, student=False)
    return bool(moved)


def reply_split(*, reply: Message, reviewer: User, instruction: str = "", members: Collection[int] = ()) -> Message:
    """Undo a grouping. On a member: it leaves the group and gets a draft of its own. On
    the lead: each question the card displayed (`members`, their reply ids) leaves the group
    and gets a draft of its own, and the lead keeps its draft; questions that joined since
    stay with the lead, for the teacher to see first. Returns the reply as it is now."""
    instruction = clean_text(instruction)[:200]
    with transaction.atomic():
        current = Message.objects.select_for_update().select_related("conversation__classroom__school").get(pk=reply.pk)
        if not current.is_pending:
            raise ReviewConflict(_already_decided_message(reply.pk))
        if not Message.objects.filter(pk=current.pk).filter(_claim_free(reviewer, timezone.now())).exists():
            raise _refusal(current.pk, reviewer)
        classroom = current.conversation.classroom
        led = QuestionGroup.objects.filter(lead=current).first()
        if led is not None:
            group = led
            shown = Message.objects.filter(group=group, status=Message.Status.GROUPED, pk__in=list(members))
            if not [_requeue_member(member) for member in shown]:
                raise InvalidMessage(_("None of the questions on this card is still in its group."))
        elif current.status == Message.Status.GROUPED and current.group_id:
            group = QuestionGroup.objects.get(pk=current.group_id)
            _requeue_member(current, instruction=instruction)
        else:
            raise InvalidMessage(_("This question is not part of a group."))
        lead_id = group.lead_id
        if not Message.objects.filter(group=group, status=Message.Status.GROUPED).exists():
            Message.objects.filter(pk=lead_id).update(group=None)
            group.delete()
        audit_record(
            actor=reviewer,
            action="review.split",
            school=classroom.school,
            target=f"reply {current.pk}",
            details={"classroom": classroom.id, "lead": lead_id},
        )
        transaction.on_commit(lambda: events.review_item_changed(classroom.id, lead_id))
        _after_commit_waits_changed(classroom.id)
    return Message.objects.select_related("conversation__classroom", "conversation__student", "in_reply_to").get(
        pk=current.pk
    )


def reply_claim(*, reply: Message, reviewer: User) -> Message:
    """A reviewer opens a pending draft: it is theirs for TUTOR_CLAIM_SECONDS, renewed by
    claiming again while it stays open, so that no two reviewers read the same draft. The
    lease simply runs out when they walk away. Raises ClaimConflict while another reviewer
    holds it, ReviewConflict once it is decided.

    The claim's start is when the draft was opened: the decision records opened -> decided.
    """
    now = timezone.now()
    until = now + timedelta(seconds=settings.TUTOR_CLAIM_SECONDS)
    held = Q(claimed_by=reviewer) & Q(claimed_until__gte=now)
    with transaction.atomic():
        renewing = Message.objects.filter(pk=reply.pk).filter(held).exists()
        won = (
            Message.objects.filter(pk=reply.pk, status__in=PENDING_STATUSES)
            .filter(_claim_free(reviewer, now))
            .update(
                claimed_by=reviewer,
                claimed_until=until,
                review_opened_at=Case(
                    When(held, then=F("review_opened_at")), default=Value(now), output_field=models.DateTimeField()
                ),
            )
        )
        if not won:
            raise _refusal(reply.pk, reviewer)
        reply = Message.objects.select_related(
            "conversation__classroom", "conversation__student", "in_reply_to", "claimed_by"
        ).get(pk=reply.pk)
        if not renewing:
            _after_commit_notify(reply, student=False)
    return reply


def reply_release(*, reply: Message, reviewer: User) -> Message:
    """The reviewer closes a draft without deciding: others may open it at once."""
    with transaction.atomic():
        released = Message.objects.filter(pk=reply.pk, claimed_by=reviewer).update(claimed_by=None, claimed_until=None)
        reply = Message.objects.select_related("conversation__classroom", "conversation__student", "in_reply_to").get(
            pk=reply.pk
        )
        if released:
            _after_commit_notify(reply, student=False)
    return reply


def delete_expired_conversations() -> int:
    """Delete each school's conversations older than its retention period, then the
    course material retention says goes (tutor.material.services.delete_expired_material)."""
    from classrooms.models import School
    from tutor.material.services import delete_expired_material

    deleted = 0
    for school in School.objects.all():
        cutoff = timezone.now() - timedelta(days=school.retention_days)
        old = Conversation.objects.filter(classroom__school=school, updated_at__lt=cutoff)
        deleted += old.count()
        old.delete()
        delete_expired_material(school=school)
    return deleted


def conversation_history_open(*, actor: User, conversation: Conversation) -> None:
    """A teacher or reviewer of the class opened the conversation's full history: one line
    in the school's audit log, every time (who read which student's chat). No student
    text goes into the line."""
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="conversation.open",
            school=conversation.classroom.school,
            target=f"{conversation.student} ({conversation.classroom.name})",
            details={"conversation_id": conversation.pk, "classroom_id": conversation.classroom_id},
            subject=conversation.student,
        )
