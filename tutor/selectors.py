"""Reads and access rules for conversations and replies.

`student_view` is the approval gate: the only function that turns a message into what a
student may see. Every page, socket, API and export a student reaches goes through it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from importlib import import_module
from types import SimpleNamespace
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib import auth
from django.db.models import Count, Min, Q, QuerySet
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from classrooms.models import Classroom, Membership, User
from classrooms.selectors import (
    classroom_model,
    classroom_quotas,
    classrooms_reviewed_by,
    declared_models,
    model_label,
    school_zone,
)
from tutor import checks, triage
from tutor.measures import percentile
from tutor.models import Conversation, Message
from tutor.rendering import render_markdown
from tutor.safeguarding import classifier

PENDING_STATUSES = Message.PENDING_STATUSES
REVIEWABLE_STATUSES = Message.REVIEWABLE_STATUSES

# Why a reply waits or failed, as stored (in English) and shown to its teachers. A reason
# that starts with one of these is followed by details that stay as they are.
MODEL_UNLOADABLE = gettext_noop("The model cannot be loaded, so drafts wait until it is fixed:")
PREFIXED_REASONS = (MODEL_UNLOADABLE,)


def failure_text(failure: str) -> str:
    """A reply's stored failure or waiting reason in the reader's language: a known reason
    translated whole, or its known opening translated and its details kept."""
    if not failure:
        return ""
    for prefix in PREFIXED_REASONS:
        if failure.startswith(prefix):
            return f"{_(prefix)}{failure[len(prefix) :]}"
    return _(failure)


def student_visible_text(message: Message) -> str | None:
    """The text a student may read, or None while no teacher has decided.

    A tutor reply's text is final_text, which only a teacher's decision writes; the
    model's draft_text never leaves this function. A school message is the text the
    school admin approved in advance (the supportive message after an urgent message).
    """
    if message.sender in (Message.Sender.STUDENT, Message.Sender.SCHOOL):
        return message.text
    if message.status in Message.DECIDED_STATUSES and message.final_text:
        return message.final_text
    return None


def student_view(message: Message) -> dict:
    """A message as its student sees it."""
    text = student_visible_text(message)
    if message.sender == Message.Sender.STUDENT:
        state = "sent"
    elif message.sender == Message.Sender.SCHOOL:
        state = "school"
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
        "html": render_markdown(text) if text else "",  # made from the gated text only
        "state": state,
        "version": message.version,
        "client_id": message.client_id,
        "created_at": message.created_at.isoformat(),
        "in_reply_to": message.in_reply_to_id,
    }


def session_signed_in_until(session_key: str | None, user: User) -> datetime | None:
    """Until when the session `session_key` signs `user` in; None once it does not
    (signed out, expired, another person's, the password changed, the account
    deactivated). The session is read as a request would read it: `SessionStore.exists`
    is true for an expired session until clearsessions purges it (PITFALLS)."""
    if not session_key or getattr(user, "pk", None) is None:
        return None
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    if auth.get_user(SimpleNamespace(session=store)).pk != user.pk:
        return None
    model = getattr(store, "get_model_class", None)  # database-backed sessions know their end
    if model is None:
        return store.get_expiry_date()
    return model().objects.filter(session_key=session_key).values_list("expire_date", flat=True).first()


def conversations_of_student(user: User, classroom_id: int) -> QuerySet[Conversation]:
    return Conversation.objects.filter(student=user, classroom_id=classroom_id)


def conversation_for_student(user: User, conversation_id: int) -> Conversation:
    """The conversation, if it is this student's, in a class they still belong to; else 404."""
    conversation = (
        Conversation.objects.select_related("classroom")
        .filter(
            pk=conversation_id,
            student=user,
            student__is_active=True,  # read fresh: a long-lived socket's user object is stale
            classroom__archived=False,
            classroom__memberships__user=user,
            classroom__memberships__role=Membership.Role.STUDENT,
        )
        .first()
    )
    if conversation is None:
        raise Http404
    return conversation


def messages_for_student(conversation: Conversation, since_version: int = 0) -> list[dict]:
    messages = conversation.messages.filter(version__gt=since_version).order_by("created_at", "id")
    return [student_view(m) for m in messages]


def review_priority(reply: Message) -> list:
    """Where a reply stands in the review queue, as a list that sorts ascending: the most
    worrying question first (its safety tier, tutor.safeguarding: 2 urgent, then 1, a
    concern, which every distressed student's question is at least), then drafts whose
    maths is wrong, then the oldest question.

    The one ordering rule: the queue page, the socket's queue, the waits and review.js's
    live insertion all sort by it (it travels in reviewer_view as "priority")."""
    check_flags = (reply.checks or {}).get("flags", ())
    return [
        -reply.safety_tier,
        0 if triage.MATHS_ERROR in check_flags else 1,
        reply.created_at.isoformat(),
        reply.pk,
    ]


def review_queue(user: User) -> list[Message]:
    """Replies a teacher has to act on in their classes, in review_priority order. A group
    appears once, as its lead."""
    replies = (
        Message.objects.filter(
            sender=Message.Sender.TUTOR,
            status__in=REVIEWABLE_STATUSES,
            conversation__classroom__in=classrooms_reviewed_by(user),
        )
        .select_related("conversation__classroom", "conversation__student", "in_reply_to", "claimed_by")
        .order_by("created_at", "id")
    )
    return sorted(replies, key=review_priority)


def reply_for_reviewer(user: User, reply_id: int) -> Message:
    """A tutor reply in one of this person's reviewed classes; 404 for missing and forbidden alike."""
    reply = (
        Message.objects.select_related("conversation__classroom", "conversation__student", "in_reply_to", "claimed_by")
        .filter(pk=reply_id, sender=Message.Sender.TUTOR, conversation__classroom__in=classrooms_reviewed_by(user))
        .first()
    )
    if reply is None:
        raise Http404
    return reply


def _safety_view(reply: Message) -> dict:
    """The question's safety tier and category, and its urgent alert if any."""
    from tutor.models import SafeguardingAlert

    alert_id = None
    if reply.safety_tier >= classifier.URGENT:
        alert_id = (
            SafeguardingAlert.objects.filter(question_id=reply.in_reply_to_id).values_list("pk", flat=True).first()
        )
    category = reply.safety_category or (classifier.DISTRESS if reply.distressed else classifier.OK)
    return {
        "tier": reply.safety_tier,
        "category": category,
        "category_label": str(classifier.CATEGORY_LABELS.get(category, category)),
        "alert_id": alert_id,
    }


def _flags(reply: Message, max_words: int) -> list[dict]:
    """What to check on the card: the question's safety tier and the draft's checks."""
    codes = triage.draft_flags(
        draft=reply.draft_text,
        mean_token_prob=reply.mean_token_prob,
        distressed=reply.distressed,
        max_words=max_words,
        checks=reply.checks,
    )
    return _flag_views(reply, codes, reply.checks)


def _flag_views(reply: Message, codes: list[str], found: dict | None) -> list[dict]:
    """Flags with their labels, for the model's draft or a teacher's edit of it (`found`:
    what tutor.checks found in that text). The concern flag says the question's tier and
    category, the unsafe-draft flag what the draft brings up."""
    flags = triage.flag_views(codes, found)
    for flag in flags:
        if flag["code"] == triage.DISTRESSED:
            category = str(
                classifier.CATEGORY_LABELS.get(reply.safety_category, classifier.CATEGORY_LABELS["distress"])
            )
            if reply.safety_tier >= classifier.URGENT:
                flag["label"] = _("Urgent: %(category)s. Staff were alerted.") % {"category": category}
            else:
                flag["label"] = _("Concern: %(category)s") % {"category": category}
            flag["tier"] = max(1, reply.safety_tier)
        elif flag["code"] == triage.UNSAFE_DRAFT:
            code = ((found or {}).get("safety") or {}).get("category", "")
            category = str(classifier.CATEGORY_LABELS.get(code, code))
            flag["label"] = _("The draft may be unsafe (%(category)s): read it closely.") % {"category": category}
    return flags


def _claim_holder(reply: Message, now: datetime | None = None) -> User | None:
    """Who has this draft open now (an unexpired claim), if anyone."""
    now = now or timezone.now()
    if reply.claimed_by_id and reply.claimed_until and reply.claimed_until >= now:
        return reply.claimed_by
    return None


def _group_view(reply: Message) -> dict | None:
    """The group a reply leads or belongs to, when two questions or more wait in it: the
    lead, then each member still waiting, in the order they asked.

    A review card displays these and sends back the members' reply ids with its decision,
    which answers those and no others (tutor.services._decide); the page compares them
    with what it showed when the teacher opened the card, to say who asked since."""
    if not reply.group_id:
        return None
    lead_id = reply.pk if reply.status != Message.Status.GROUPED else reply.group.lead_id
    members = list(
        Message.objects.filter(group_id=reply.group_id)
        .filter(Q(pk=lead_id) | Q(status=Message.Status.GROUPED))
        .select_related("conversation__student", "in_reply_to")
        .order_by("created_at", "id")
    )
    if len(members) < 2:
        return None
    members.sort(key=lambda m: (m.pk != lead_id, m.created_at, m.pk))
    return {
        "id": reply.group_id,
        "size": len(members),
        "students": [str(m.conversation.student) for m in members],
        # Each member, for splitting one out or answering it apart (the lead first).
        "lead_id": lead_id,
        # What the card sends back with its decision: the questions besides its own.
        "others": [m.pk for m in members if m.pk != reply.pk],
        "members": [
            {
                "reply_id": m.pk,
                "student": str(m.conversation.student),
                "question": m.in_reply_to.text,
                "asked_at": m.in_reply_to.created_at.isoformat(),
            }
            for m in members
        ],
    }


def reviewer_view(reply: Message, history_limit: int = 12, *, viewer: User | None = None) -> dict:
    """A reply as a teacher reviews it: the draft, the question, and the conversation before
    it; what to check (flags), its group, and who has it open (as `viewer` sees it)."""
    conversation = reply.conversation
    holder = _claim_holder(reply)
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
        "failure": failure_text(reply.failure),
        # The model chosen for this reply, as teachers know it (the engine's own name apart).
        "model": model_label(reply.model_key) or reply.model_name,
        "model_name": reply.model_name,
        "question": reply.in_reply_to.text,
        "asked_at": reply.in_reply_to.created_at.isoformat(),
        "student": str(conversation.student),
        "classroom": conversation.classroom.name,
        "classroom_id": conversation.classroom_id,
        "conversation_id": conversation.id,
        "safety": _safety_view(reply),
        "history": [
            {
                "sender": m.sender,
                "text": student_visible_text(m) or "",
                "html": render_markdown(student_visible_text(m)),
            }
            for m in earlier
            if student_visible_text(m) is not None
        ],
        "decided": reply.status in Message.DECIDED_STATUSES,
        "decision": reply.decision,
        "reviewed_by": str(reply.reviewed_by) if reply.reviewed_by_id else "",
        "flags": _flags(reply, conversation.classroom.max_reply_words),
        "checks": checks.summary(reply.checks) if reply.draft_text else checks.summary({}),
        "priority": review_priority(reply),
        "group": _group_view(reply),
        "claimed_by": str(holder) if holder is not None else "",
        "claimed_by_me": holder is not None and viewer is not None and holder.pk == viewer.pk,
        "words": triage.word_count(reply.draft_text),
        "sources": _sources(reply),
    }


def _sources(reply: Message) -> list[dict]:
    from tutor.material.selectors import sources_of

    return sources_of(reply)


def edited_draft_checks(reply: Message, text: str) -> dict:
    """The card's flags and checks line for a teacher's edit of the draft, before they
    approve it: the same checks as the worker's, on the edited text (no new draft)."""
    text = (text or "").strip()[: settings.TUTOR_MAX_MESSAGE_CHARS * 2]
    found = checks.run_checks(text, checks.context_for(reply)) if text else {}
    codes = triage.draft_flags(
        draft=text,
        mean_token_prob=reply.mean_token_prob if text == reply.draft_text.strip() else None,
        distressed=reply.distressed,
        max_words=reply.conversation.classroom.max_reply_words,
        checks=found,
    )
    return {
        "id": reply.pk,
        "flags": _flag_views(reply, codes, found),
        "checks": checks.summary(found),
        "words": triage.word_count(text),
    }


# Honest waits: estimates from the queue, and measured times.

WAIT_HISTORY = timedelta(hours=2)  # recent enough to say how fast this class is reviewed now
ACTIVE_REVIEWER = timedelta(minutes=10)
RECENT_SAMPLES = 20


@dataclass
class QueueSnapshot:
    """One class's review queue at one moment, as the wait estimates read it."""

    now: datetime
    units: list[dict]  # pending reviews in the order reviewers take them (a group once)
    position: dict[int, int]  # reply id -> index in units
    review_seconds: float  # recent mean time from opening a draft to deciding it
    reviewers: int  # reviewers active in the class lately (at least 1)
    draft_seconds: float  # recent mean time from asking to a finished draft
    model: dict | None = None  # tutor.workers.model_status: can the model draft now?


def _mean(values: list[float], default: float) -> float:
    return sum(values) / len(values) if values else default


def queue_snapshot(classroom_id: int, now: datetime | None = None) -> QueueSnapshot:
    now = now or timezone.now()
    tutor_replies = Message.objects.filter(conversation__classroom_id=classroom_id, sender=Message.Sender.TUTOR)
    pending = tutor_replies.filter(status__in=REVIEWABLE_STATUSES).only(
        "id", "status", "queued_at", "created_at", "claimed_by_id", "claimed_until", "safety_tier", "checks"
    )
    units = [
        {
            "id": r.pk,
            "status": r.status,
            "queued_at": r.queued_at,
            "created_at": r.created_at,
            "claimed_by_id": r.claimed_by_id,
            "claimed_until": r.claimed_until,
        }
        for r in sorted(pending, key=review_priority)
    ]
    for unit in units:
        unit["open"] = bool(unit["claimed_by_id"] and unit["claimed_until"] and unit["claimed_until"] >= now)
    recent = tutor_replies.filter(reviewed_at__gte=now - WAIT_HISTORY).order_by("-reviewed_at")
    review_samples = list(
        recent.filter(review_seconds__isnull=False).values_list("review_seconds", flat=True)[:RECENT_SAMPLES]
    )
    reviewers = set(
        recent.filter(reviewed_at__gte=now - ACTIVE_REVIEWER, review_seconds__isnull=False).values_list(
            "reviewed_by_id", flat=True
        )[:200]
    )
    reviewers |= {u["claimed_by_id"] for u in units if u["open"]}
    reviewers.discard(None)
    drafted = tutor_replies.filter(drafted_at__gte=now - WAIT_HISTORY, queued_at__isnull=False).order_by("-drafted_at")
    draft_samples = [
        max(0.0, (d - q).total_seconds()) for q, d in drafted.values_list("queued_at", "drafted_at")[:RECENT_SAMPLES]
    ]
    return QueueSnapshot(
        now=now,
        units=units,
        position={u["id"]: i for i, u in enumerate(units)},
        review_seconds=_mean(review_samples, settings.TUTOR_DEFAULT_REVIEW_SECONDS),
        reviewers=max(1, len(reviewers)),
        draft_seconds=_mean(draft_samples, settings.TUTOR_DEFAULT_DRAFT_SECONDS),
        model=drafting_status(
            [classroom_model(c) for c in Classroom.objects.select_related("school").filter(pk=classroom_id)]
        ),
    )


_WORST_FIRST = ("unavailable", "none", "stalled", "loading", "unknown", "ready")


def drafting_status(model_keys: list[str] | None = None) -> dict:
    """Whether these models (default: the deployment's default model) can draft now, from
    the workers' heartbeats: the least ready of them, as "ready", "loading" (with
    `eta_s`), "stalled", "none", or "unknown" when Redis does not answer."""
    from tutor import workers

    statuses = [workers.model_status(key) for key in (model_keys or [workers.default_model()])]
    return min(statuses, key=lambda s: _WORST_FIRST.index(s["state"]) if s["state"] in _WORST_FIRST else 3)


def drafting_status_for(classrooms: Iterable[Classroom]) -> dict:
    """drafting_status of the models that draft these classes' replies."""
    return drafting_status(sorted({classroom_model(c) for c in classrooms}))


def wait_estimate(reply: Message, snapshot: QueueSnapshot) -> int:
    """Seconds until a reviewer has likely decided on this reply.

    The reviews ahead of it (a draft someone has open counts half) shared among the
    active reviewers, at the class's recent time per review; meanwhile its own draft is
    written, so the wait is the longer of the two, then its own review.
    """
    unit_id = reply.pk
    if reply.status == Message.Status.GROUPED and reply.group_id:
        unit_id = reply.group.lead_id
    index = snapshot.position.get(unit_id, len(snapshot.units))
    unit = snapshot.units[index] if index < len(snapshot.units) else None
    ahead = sum(0.5 if u["open"] else 1.0 for u in snapshot.units[:index])
    own = 0.5 if unit and unit["open"] else 1.0
    draft_left = 0.0
    if unit is None or unit["status"] in (Message.Status.QUEUED, Message.Status.DRAFTING):
        queued_at = (unit and unit["queued_at"]) or snapshot.now
        draft_left = max(1.0, snapshot.draft_seconds - (snapshot.now - queued_at).total_seconds())
        if unit is not None and unit["status"] == Message.Status.QUEUED and _model_state(snapshot) == "loading":
            draft_left += snapshot.model.get("eta_s") or 0  # the model first finishes loading
    queue_left = ahead * snapshot.review_seconds / snapshot.reviewers
    return max(1, round(max(draft_left, queue_left) + own * snapshot.review_seconds))


def _model_state(snapshot: QueueSnapshot) -> str:
    return (snapshot.model or {}).get("state") or "unknown"


def wait_entry(reply: Message, snapshot: QueueSnapshot) -> dict:
    """What a waiting student's page shows for one reply: the estimated seconds and, while
    its draft is not written yet and the model cannot write it ("loading" or "none"), why,
    with the model's estimated loading time. Numbers and states only, never text."""
    entry = {"reply_id": reply.pk, "seconds": wait_estimate(reply, snapshot)}
    state = _model_state(snapshot)
    if reply.status in (Message.Status.QUEUED, Message.Status.DRAFTING) and state in (
        "loading",
        "none",
        "stalled",
        "unavailable",
    ):
        entry["model"] = "loading" if state == "loading" else "none"
        entry["model_eta_s"] = snapshot.model.get("eta_s")
    return entry


def class_wait_estimates(classroom_id: int, conversation_ids: list[int] | None = None) -> dict[int, list[dict]]:
    """wait_estimates for every waiting conversation of a class (or these ones), from one
    look at the queue: conversation id -> [{reply_id, seconds}]. Numbers only."""
    pending = Message.objects.filter(
        conversation__classroom_id=classroom_id, sender=Message.Sender.TUTOR, status__in=PENDING_STATUSES
    )
    if conversation_ids is not None:
        pending = pending.filter(conversation_id__in=conversation_ids)
    pending = list(pending.select_related("group").order_by("created_at", "id"))
    estimates: dict[int, list[dict]] = {cid: [] for cid in conversation_ids or ()}
    if pending:
        snapshot = queue_snapshot(classroom_id)
        for reply in pending:
            estimates.setdefault(reply.conversation_id, []).append(wait_entry(reply, snapshot))
    return estimates


def wait_estimates(conversation: Conversation) -> list[dict]:
    """For each reply the student still waits for: `wait_entry` (its id, the estimated
    seconds, and whether the model is loading or absent). Numbers only, never text."""
    pending = list(
        conversation.messages.filter(sender=Message.Sender.TUTOR, status__in=PENDING_STATUSES)
        .select_related("group")
        .order_by("created_at", "id")
    )
    if not pending:
        return []
    snapshot = queue_snapshot(conversation.classroom_id)
    return [wait_entry(r, snapshot) for r in pending]


def queue_header(classrooms: Iterable[Classroom]) -> list[dict]:
    """Per class: questions waiting, reviews they need (a group once), the oldest wait."""
    now = timezone.now()
    rows = []
    for classroom in classrooms:
        pending = Message.objects.filter(
            conversation__classroom=classroom, sender=Message.Sender.TUTOR, status__in=PENDING_STATUSES
        )
        oldest = pending.order_by("created_at").values_list("created_at", flat=True).first()
        rows.append(
            {
                "classroom_id": classroom.pk,
                "classroom": classroom.name,
                "pending_questions": pending.count(),
                "pending_reviews": pending.filter(status__in=REVIEWABLE_STATUSES).count(),
                "oldest_wait_s": round((now - oldest).total_seconds()) if oldest else 0,
            }
        )
    return rows


def classrooms_with_stats_for(user: User) -> QuerySet[Classroom]:
    """Classes whose waits and review times this person may see: those they review
    (classrooms_reviewed_by), and every class of the school they administer."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return Classroom.objects.none()
    allowed = Q(pk__in=classrooms_reviewed_by(user).values("pk"))
    if user.is_school_admin and user.school_id:
        allowed |= Q(school_id=user.school_id)
    return Classroom.objects.filter(allowed, archived=False).order_by("name")


def review_stats(classroom: Classroom, *, days: int = 7) -> dict:
    """A class's measured waits (asked -> decided) and review times (opened -> decided)."""
    since = timezone.now() - timedelta(days=days)
    decided = list(
        Message.objects.filter(
            conversation__classroom=classroom,
            sender=Message.Sender.TUTOR,
            status__in=Message.DECIDED_STATUSES,
            reviewed_at__gte=since,
        )
        .order_by("-reviewed_at")
        .values("created_at", "reviewed_at", "review_seconds", "group_id")[:5000]
    )
    waits = [(d["reviewed_at"] - d["created_at"]).total_seconds() for d in decided]
    reviews = [d["review_seconds"] for d in decided if d["review_seconds"] is not None]
    return {
        "classroom_id": classroom.pk,
        "classroom": classroom.name,
        "days": days,
        "answered": len(decided),
        "reviews": len(reviews),
        "grouped_share": round(sum(1 for d in decided if d["group_id"]) / len(decided), 3) if decided else 0.0,
        "wait_p50_s": percentile(waits, 0.5),
        "wait_p95_s": percentile(waits, 0.95),
        "review_p50_s": percentile(reviews, 0.5),
        "review_p95_s": percentile(reviews, 0.95),
    }


def owed_drafts() -> dict:
    """The whole platform's pending replies, by state, and how long the oldest reply that
    still needs a draft (queued or drafting) has waited. Numbers only (for /readyz and
    the metrics)."""
    counts = dict(
        Message.objects.filter(sender=Message.Sender.TUTOR, status__in=PENDING_STATUSES)
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    by_state = {str(status): counts.get(status, 0) for status in PENDING_STATUSES}
    oldest = Message.objects.filter(
        sender=Message.Sender.TUTOR, status__in=(Message.Status.QUEUED, Message.Status.DRAFTING)
    ).aggregate(at=Min("queued_at"))["at"]
    return {
        "by_state": by_state,
        "owed": by_state[Message.Status.QUEUED] + by_state[Message.Status.DRAFTING],
        "oldest_owed_s": round((timezone.now() - oldest).total_seconds()) if oldest else None,
    }


def decline_notice() -> str:
    return _("Your teacher chose not to send this answer. Try asking another way, or ask them in class.")


# The model that drafts a reply.


def reply_model_key(reply: Message) -> str:
    """The model that drafts `reply`: the one recorded on it, or, when the deployment no
    longer declares that one, the class's model now."""
    if reply.model_key in [m["key"] for m in declared_models()]:
        return reply.model_key
    return classroom_model(reply.conversation.classroom)


def draft_model_key(reply_id: int) -> str | None:
    """reply_model_key of the reply `reply_id`, or None if it is gone."""
    reply = Message.objects.select_related("conversation__classroom__school").filter(pk=reply_id).first()
    return reply_model_key(reply) if reply is not None else None


# The teacher's view of the class: the live monitor, a conversation's full history, the
# report. Who may see them is the one "reviews this class" rule (classrooms_reviewed_by).


def classroom_for_reviewer(user: User, classroom_id: int) -> Classroom:
    """A class this person teaches or reviews now; 404 for missing and forbidden alike."""
    classroom = classrooms_reviewed_by(user).select_related("school").filter(pk=classroom_id).first()
    if classroom is None:
        raise Http404
    return classroom


def conversation_for_class_staff(user: User, classroom_id: int, conversation_id: int) -> Conversation:
    """A conversation of a class this person reviews, named with its own class; 404 when
    either is not theirs or the conversation belongs to another class."""
    classroom = classroom_for_reviewer(user, classroom_id)
    conversation = (
        Conversation.objects.select_related("student", "classroom__school")
        .filter(pk=conversation_id, classroom=classroom)
        .first()
    )
    if conversation is None:
        raise Http404
    return conversation


# The monitor's states, in the order a teacher looks at them (most worrying first).
MONITOR_STATES = ("flagged", "failed", "in_review", "drafting", "answered")
# Flags that make a waiting conversation "flagged": what a teacher must not miss.
MONITOR_FLAGS = (triage.DISTRESSED, triage.UNSAFE_DRAFT, triage.MATHS_ERROR, triage.WRONG_LANGUAGE)
MONITOR_LIMIT = 300  # the most recently active conversations of the class


def monitor_state_labels() -> dict[str, str]:
    return {
        "flagged": _("Flagged"),
        "failed": _("Drafting failed"),
        "in_review": _("In review"),
        "drafting": _("Drafting"),
        "answered": _("Answered"),
    }


def _monitor_state(reply: Message, flags: list[str]) -> str:
    if reply.status in Message.DECIDED_STATUSES:
        return "answered"
    if any(f in MONITOR_FLAGS for f in flags):
        return "flagged"
    if reply.status == Message.Status.FAILED:
        return "failed"
    if reply.status in (Message.Status.AWAITING_REVIEW, Message.Status.GROUPED):
        return "in_review"
    return "drafting"


def class_monitor(classroom: Classroom, now: datetime | None = None) -> list[dict]:
    """Each conversation of the class with a question in it: its student, last question,
    state, flags and waiting time so far (asked -> now while it waits, asked -> decided
    once answered), sorted by state (MONITOR_STATES) and then the longest wait first.
    For the class's staff only: it names students and quotes their questions."""
    from django.db.models import OuterRef, Subquery

    now = now or timezone.now()
    last_reply = Message.objects.filter(conversation=OuterRef("pk"), sender=Message.Sender.TUTOR).order_by(
        "-created_at", "-id"
    )
    conversations = list(
        Conversation.objects.filter(classroom=classroom)
        .annotate(last_reply_id=Subquery(last_reply.values("pk")[:1]))
        .filter(last_reply_id__isnull=False)
        .select_related("student")
        .order_by("-updated_at", "-id")[:MONITOR_LIMIT]
    )
    replies = {
        r.pk: r
        for r in Message.objects.filter(pk__in=[c.last_reply_id for c in conversations]).select_related("in_reply_to")
    }
    labels = monitor_state_labels()
    rows = []
    for conversation in conversations:
        reply = replies.get(conversation.last_reply_id)
        if reply is None or reply.in_reply_to is None:
            continue
        flags = triage.draft_flags(
            draft=reply.draft_text,
            mean_token_prob=None,
            distressed=reply.distressed,
            max_words=classroom.max_reply_words,
            checks=reply.checks,
        )
        flags = [f for f in flags if f in MONITOR_FLAGS]
        state = _monitor_state(reply, flags)
        asked = reply.in_reply_to.created_at
        waiting = state != "answered"
        until = now if waiting or reply.reviewed_at is None else reply.reviewed_at
        rows.append(
            {
                "conversation_id": conversation.pk,
                "student": str(conversation.student),
                "question": reply.in_reply_to.text,
                "asked_at": asked.isoformat(),
                "state": state,
                "state_label": str(labels[state]),
                "flags": [{"code": f["code"], "label": f["label"]} for f in triage.flag_views(flags, reply.checks)],
                "waiting": waiting,
                "wait_s": max(0, round((until - asked).total_seconds())),
            }
        )
    rows.sort(key=lambda r: (MONITOR_STATES.index(r["state"]), -r["wait_s"], r["conversation_id"]))
    return rows


def staff_history(conversation: Conversation) -> list[dict]:
    """A conversation's whole history as the class's staff read it: each question, and
    each reply with what the student read, the model's drafts and the decision. Never for
    a student's eyes (the drafts are in it)."""
    messages = conversation.messages.select_related("reviewed_by").order_by("created_at", "id")
    history = []
    for m in messages:
        visible = student_visible_text(m)
        entry = {
            "id": m.pk,
            "sender": m.sender,
            "created_at": m.created_at,
            "text": visible,
            "html": render_markdown(visible) if visible else "",
        }
        if m.sender == Message.Sender.TUTOR:
            entry |= {
                "status_label": str(Message.Status(m.status).label) if m.status else "",
                "decision_label": str(Message.Decision(m.decision).label) if m.decision else "",
                "reviewed_by": str(m.reviewed_by) if m.reviewed_by_id else "",
                "reviewed_at": m.reviewed_at,
                "draft": m.draft_text,
                "previous_drafts": [d.get("text", "") if isinstance(d, dict) else str(d) for d in m.previous_drafts],
                "failure": failure_text(m.failure),
            }
        history.append(entry)
    return history


REPORT_PERIODS = (7, 30)
REPORT_LIMIT = 20_000  # replies read for one report


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None


def _last_days(classroom: Classroom, days: int, now: datetime) -> tuple[date, datetime, ZoneInfo]:
    """The first of the class's last `days` days (today included), the moment it began,
    and the zone they are counted in: the school's, wherever the server runs."""
    zone = school_zone(classroom.school)
    first_day = timezone.localdate(now, zone) - timedelta(days=days - 1)
    return first_day, timezone.make_aware(datetime.combine(first_day, datetime.min.time()), zone), zone


def class_report(classroom: Classroom, *, days: int = 7, now: datetime | None = None) -> dict:
    """A class's last `days` days (today included, in the school's time zone): questions
    and answers per day, waits (asked -> decided) and review times (opened -> decided)
    as p50/p95, how reviews were decided, how often drafts were flagged, and the share of
    answers that came from one review of a group. Numbers only: no student, no text."""
    first_day, start, zone = _last_days(classroom, days, now or timezone.now())
    replies = list(
        Message.objects.filter(conversation__classroom=classroom, sender=Message.Sender.TUTOR, created_at__gte=start)
        .select_related("group")
        .order_by("created_at", "id")
        .only(
            "id",
            "created_at",
            "status",
            "decision",
            "reviewed_at",
            "review_seconds",
            "group",
            "checks",
            "draft_text",
            "distressed",
            "safety_tier",
        )[:REPORT_LIMIT]
    )
    by_day = {
        first_day + timedelta(days=i): {"questions": 0, "answered": 0, "waits": [], "reviews": []} for i in range(days)
    }
    decided = reviews = edited = rejected = grouped = drafted = maths = language = distress = 0
    waits, review_times = [], []
    for reply in replies:
        day = by_day.get(timezone.localdate(reply.created_at, zone))
        if day is None:
            continue
        day["questions"] += 1
        flags = (reply.checks or {}).get("flags", ())
        if reply.draft_text:
            drafted += 1
            maths += triage.MATHS_ERROR in flags
            language += triage.WRONG_LANGUAGE in flags
        distress += bool(reply.distressed or reply.safety_tier >= 1)
        if reply.status not in Message.DECIDED_STATUSES or reply.reviewed_at is None:
            continue
        decided += 1
        day["answered"] += 1
        wait = max(0.0, (reply.reviewed_at - reply.created_at).total_seconds())
        waits.append(wait)
        day["waits"].append(wait)
        if reply.review_seconds is not None:
            review_times.append(reply.review_seconds)
            day["reviews"].append(reply.review_seconds)
        if reply.group_id:
            grouped += 1
        if reply.group_id and reply.group.lead_id != reply.pk:
            continue  # answered by its group's review, counted once on the lead
        reviews += 1
        edited += reply.decision == Message.Decision.EDITED
        rejected += reply.decision in (Message.Decision.REJECTED, Message.Decision.TEACHER_REPLY)
    questions = sum(d["questions"] for d in by_day.values())
    return {
        "classroom_id": classroom.pk,
        "days": days,
        "first_day": first_day,
        "last_day": first_day + timedelta(days=days - 1),
        "questions": questions,
        "answered": decided,
        "reviews": reviews,
        "wait_p50_s": percentile(waits, 0.5),
        "wait_p95_s": percentile(waits, 0.95),
        "review_p50_s": percentile(review_times, 0.5),
        "review_p95_s": percentile(review_times, 0.95),
        "edit_rate": _share(edited, reviews),
        "reject_rate": _share(rejected, reviews),
        "drafts": drafted,
        "maths_error_rate": _share(maths, drafted),
        "wrong_language_rate": _share(language, drafted),
        "distress_rate": _share(distress, questions),
        "grouped_share": _share(grouped, decided),
        "per_day": [
            {
                "day": day,
                "questions": d["questions"],
                "answered": d["answered"],
                "wait_p50_s": percentile(d["waits"], 0.5),
                "wait_p95_s": percentile(d["waits"], 0.95),
                "review_p50_s": percentile(d["reviews"], 0.5),
                "review_p95_s": percentile(d["reviews"], 0.95),
            }
            for day, d in by_day.items()
        ],
    }


TOPIC_QUESTIONS = 300  # the most recent questions of the period that are grouped (bench/class_topics.py)
TOPIC_EXAMPLES = 3


def _question_vectors(questions: list[Message]):
    """Each question's embedding (tutor.embeddings): the one the housekeeping worker
    stored when it was asked (tutor.services.question_embed); those it has not stored
    yet (the worker was away) are computed here and stored, once."""
    import numpy as np

    from tutor import embeddings

    vectors = [embeddings.from_bytes(m.topic_vector) if m.topic_vector else None for m in questions]
    missing = [i for i, v in enumerate(vectors) if v is None or v.shape != (embeddings.DIMENSIONS,)]
    if missing:
        computed = embeddings.embed_queries([questions[i].text for i in missing])
        for i, vector in zip(missing, computed, strict=True):
            vectors[i] = vector
            questions[i].topic_vector = embeddings.to_bytes(vector)
        Message.objects.bulk_update([questions[i] for i in missing], ["topic_vector"], batch_size=100)
    return np.stack(vectors)


def class_topics(classroom: Classroom, *, days: int = 7, with_students: bool = False) -> dict:
    """What the class asked about in the last `days` days, grouped by topic (tutor.topics):
    per topic its size, a label (its most central question), a few example questions, the
    conversations, and, `with_students` (for the class's teachers), who asked. Questions
    alike in no other's way are counted apart, not listed."""
    from tutor import topics

    first_day, start, _zone = _last_days(classroom, days, timezone.now())
    questions = list(
        Message.objects.filter(conversation__classroom=classroom, sender=Message.Sender.STUDENT, created_at__gte=start)
        .exclude(text="")
        .select_related("conversation__student")
        .order_by("-created_at", "-id")[:TOPIC_QUESTIONS]
    )
    result = {"days": days, "first_day": first_day, "questions": len(questions), "topics": [], "alone": 0}
    if not questions:
        return result
    vectors = _question_vectors(questions)
    for indexes in topics.cluster(vectors):
        if len(indexes) < 2:
            result["alone"] += 1
            continue
        ordered = topics.central_order(vectors, indexes)
        asked = [questions[i] for i in ordered]
        students = {m.conversation.student_id: str(m.conversation.student) for m in asked}
        result["topics"].append(
            {
                "size": len(asked),
                "student_count": len(students),
                "label": asked[0].text,
                "examples": [m.text for m in asked[1 : 1 + TOPIC_EXAMPLES]],
                "students": sorted(students.values()) if with_students else [],
                "conversation_ids": sorted({m.conversation_id for m in asked}),
            }
        )
    result["topics"].sort(key=lambda t: (-t["student_count"], -t["size"]))
    return result


def student_allowance(student: User, classroom: Classroom, now: datetime | None = None) -> dict:
    """What the class's quotas leave this student now: questions left this hour and today
    (since midnight in the school's time zone), unanswered questions they may still add,
    and when the hour's oldest question stops counting ("hour_frees_at"). Read inside
    tutor.services.question_ask under the student's row lock, and shown on the chat page."""
    now = now or timezone.now()
    quotas = classroom_quotas(classroom)
    midnight = now.astimezone(school_zone(classroom.school)).replace(hour=0, minute=0, second=0, microsecond=0)
    asked = Message.objects.filter(
        conversation__student=student, conversation__classroom=classroom, sender=Message.Sender.STUDENT
    )
    hour = list(
        asked.filter(created_at__gt=now - timedelta(hours=1))
        .order_by("created_at")
        .values_list("created_at", flat=True)
    )
    today = asked.filter(created_at__gte=midnight).count()
    unanswered = Message.objects.filter(
        conversation__student=student,
        conversation__classroom=classroom,
        sender=Message.Sender.TUTOR,
        status__in=PENDING_STATUSES,
    ).count()
    return {
        "quotas": quotas,
        "asked_hour": len(hour),
        "asked_today": today,
        "unanswered": unanswered,
        "hour_left": max(0, quotas["per_hour"] - len(hour)),
        "day_left": max(0, quotas["per_day"] - today),
        "unanswered_left": max(0, quotas["unanswered"] - unanswered),
        "hour_frees_at": hour[len(hour) - quotas["per_hour"]] + timedelta(hours=1)
        if len(hour) >= quotas["per_hour"]
        else None,
    }
