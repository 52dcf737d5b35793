"""Writes of safeguarding: assessing messages, raising urgent alerts, telling people,
moving unacknowledged alerts on, acknowledging them, and teaching the classifier.

Where it runs: in the process that saves the student's question (the web process), at
asking time. The classifier needs no torch (tutor/safeguarding/classifier.py) and takes
some 10-40 ms a message here, so the urgent alert and the school's supportive message go
out with the question itself, even when no drafting worker is up. E-mails are sent from
a thread after the commit, so a slow SMTP server never holds the student's message up;
the periodic task (tutor.tasks.escalate_safeguarding_alerts, on Celery beat) retries the
ones owed and moves alerts on. The database says what is owed: a restart loses nothing.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import DatabaseError, close_old_connections, transaction
from django.db.models import Count, Max, Q
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from classrooms.models import REVIEW_ROLES, Membership, School, User
from classrooms.selectors import safeguarding_contacts, school_admins, supportive_message_for
from classrooms.services import ActionRefused, audit_record
from tutor import embeddings, events, triage
from tutor.models import AlertNotice, Message, SafeguardingAlert, SafeguardingExample
from tutor.safeguarding import classifier
from tutor.safeguarding.classifier import CONCERN, NOTHING, URGENT, Assessment, SchoolExample

log = logging.getLogger(__name__)

# An e-mail left "pending" this long was not sent by the thread that should have (its
# process died); one "sending" this long lost its sender (EMAIL_TIMEOUT is far shorter).
EMAIL_PENDING_GRACE = timedelta(seconds=30)
EMAIL_SENDING_LOST = timedelta(minutes=2)
EMAIL_RETRY_DELAYS = (30, 60, 120, 300, 600)  # seconds, then every 10 minutes
EMAIL_MAX_ATTEMPTS = 60


class AlertConflict(ActionRefused):
    """Someone else acknowledged the alert first."""

    def __init__(self, message: str, acknowledged_by: str = ""):
        super().__init__(message)
        self.acknowledged_by = acknowledged_by


# Assessing messages.

_examples_lock = threading.Lock()
_examples_cache: dict[int, tuple[tuple, list[SchoolExample]]] = {}


def school_examples(school_id: int) -> list[SchoolExample]:
    """The examples the school's reviewers added, read again only when they changed."""
    stamp = SafeguardingExample.objects.filter(school_id=school_id).aggregate(n=Count("id"), last=Max("id"))
    key = (stamp["n"], stamp["last"])
    with _examples_lock:
        cached = _examples_cache.get(school_id)
        if cached is not None and cached[0] == key:
            return cached[1]
    rows = SafeguardingExample.objects.filter(school_id=school_id).values_list("text", "label", "vector")
    examples = [SchoolExample(text=t, label=label, vector=embeddings.from_bytes(v)) for t, label, v in rows]
    with _examples_lock:
        _examples_cache[school_id] = (key, examples)
    return examples


def assess_message(text: str, *, school_id: int | None = None) -> Assessment:
    """How worrying a message is, with the school's own examples. Never raises for the
    classifier's sake: if it fails, the lexicon and the keyword list decide (logged)."""
    try:
        extra = school_examples(school_id) if school_id else ()
        return classifier.get_classifier().assess(text, school_examples=extra)
    except DatabaseError:
        raise
    except Exception:
        log.exception("the safeguarding classifier failed; the lexicon and keywords decide instead")
        label = classifier.lexicon_class(text)
        if label is not None:
            return Assessment(tier=URGENT, category=classifier.CLASSES[label][0], reason="lexicon")
        if triage.looks_distressed(text):
            return Assessment(tier=CONCERN, category=classifier.DISTRESS, reason="keywords")
        return Assessment(tier=NOTHING, category=classifier.OK, reason="fallback")


# Categories a draft must not bring up on its own (distress and bullying in a draft are
# the model talking about feelings, which it may).
UNSAFE_IN_DRAFTS = (classifier.SELF_HARM, classifier.ABUSE, classifier.VIOLENCE, classifier.SEXUAL)


def draft_safety_category(*, draft: str, question_tier: int) -> str:
    """The category of an unsafe draft, or "": it names an explicit means or plan, or it
    brings up self-harm, abuse, violence or sex in reply to a question that had none.
    (A careful reply to a worried student talks about those things; its card is already
    flagged by the question.)"""
    if not (draft or "").strip():
        return ""
    found = assess_message(draft)
    if found.reason == "lexicon":
        return found.category
    if found.tier >= CONCERN and found.category in UNSAFE_IN_DRAFTS and question_tier == NOTHING:
        return found.category
    return ""


# Raising an alert and telling people.


def _step_recipients(alert: SafeguardingAlert, step: int, contacts: list) -> list[tuple[User, str]] | None:
    """Who a step alerts, with why; None when there is no such step.

    Step 0: the class's teachers and reviewers, and the first designated person. Then one
    designated person per step, in the school's order. The last step: the school admins.
    """
    if step == 0:
        reviewers = [
            (m.user, "reviewer")
            for m in Membership.objects.filter(
                classroom_id=alert.classroom_id, role__in=REVIEW_ROLES, user__is_active=True
            ).select_related("user")
        ]
        return reviewers + [(c.person, "contact") for c in contacts[:1]]
    if step < len(contacts):
        return [(contacts[step].person, "contact")]
    if step == max(1, len(contacts)):
        return [(admin, "admin") for admin in school_admins(alert.school)]
    return None


def _tell(alert: SafeguardingAlert, step: int, now: datetime) -> None:
    """Send `step` (or, when it finds nobody new, the next step that does) and set when
    the alert moves on. Call inside a transaction holding the alert."""
    contacts = list(safeguarding_contacts(alert.school))
    while True:
        recipients = _step_recipients(alert, step, contacts)
        if recipients is None:
            step -= 1
            break
        told = set(AlertNotice.objects.filter(alert=alert).values_list("person_id", flat=True))
        new = [(person, why) for person, why in recipients if person.pk not in told]
        new = list({person.pk: (person, why) for person, why in new}.values())
        for person, why in new:
            AlertNotice.objects.create(
                alert=alert,
                person=person,
                channel=AlertNotice.Channel.APP,
                step=step,
                why=why,
                state=AlertNotice.State.SENT,
                sent_at=now,
            )
            email = AlertNotice.objects.create(
                alert=alert,
                person=person,
                channel=AlertNotice.Channel.EMAIL,
                step=step,
                why=why,
                state=AlertNotice.State.PENDING if person.email else AlertNotice.State.NO_ADDRESS,
            )
            audit_record(
                actor=None,
                action="alert.notify",
                school=alert.school,
                target=_("alert %(id)d: %(person)s") % {"id": alert.pk, "person": _person_name(person)},
                subject=person,
                details={
                    "alert": alert.pk,
                    "step": step,
                    "why": why,
                    "channels": ["app", "email" if person.email else "no e-mail address"],
                },
            )
            if person.email:
                _after_commit_send_email(email.pk)
        if new:
            break
        step += 1
    more = _step_recipients(alert, step + 1, contacts) is not None
    minutes = alert.school.alert_ack_minutes or 5
    SafeguardingAlert.objects.filter(pk=alert.pk).update(
        step=max(step, 0), next_step_at=now + timedelta(minutes=minutes) if more else None
    )
    _after_commit_tell_sockets(alert.pk)


def _person_name(person: User) -> str:
    return person.get_full_name() or person.get_username()


def _after_commit_tell_sockets(alert_id: int) -> None:
    def send():
        people = AlertNotice.objects.filter(alert_id=alert_id, channel=AlertNotice.Channel.APP)
        events.alert_changed(list(people.values_list("person_id", flat=True)), alert_id)

    transaction.on_commit(send)


def alert_raise(*, question: Message, reply: Message, assessment: Assessment) -> SafeguardingAlert:
    """An urgent message: alert the first people at once, and send the student the
    school's approved supportive message in their language.

    Call inside the transaction that saves the question (tutor.services.question_ask).
    The supportive message is text the school admin approved in advance, so it goes to
    the student without review; the model's draft still waits for a teacher.
    """
    now = timezone.now()
    conversation = question.conversation
    classroom = conversation.classroom
    school = School.objects.get(pk=classroom.school_id)
    student = conversation.student
    supportive = supportive_message_for(school.pk, student.language or translation.get_language() or "")
    school_message = None
    if supportive is not None:
        school_message = Message.objects.create(
            conversation=conversation, sender=Message.Sender.SCHOOL, text=supportive.text, version=question.version
        )
    alert = SafeguardingAlert.objects.create(
        school=school,
        classroom=classroom,
        conversation=conversation,
        question=question,
        reply=reply,
        supportive_message=school_message,
        tier=assessment.tier,
        category=assessment.category,
        reason=assessment.reason,
    )
    target = _("alert %(id)d in %(classroom)s") % {"id": alert.pk, "classroom": classroom.name}
    audit_record(
        actor=None,
        action="alert.raise",
        school=school,
        target=target,
        subject=student,
        details={"alert": alert.pk, "classroom": classroom.pk, "category": alert.category, "reason": alert.reason},
    )
    if school_message is not None:
        audit_record(
            actor=None,
            action="alert.supportive_message",
            school=school,
            target=target,
            subject=student,
            details={"alert": alert.pk, "language": supportive.language, "approved_by": supportive.approved_by_id},
        )
    _tell(alert, 0, now)
    return alert


def alerts_escalate(*, now: datetime | None = None) -> int:
    """Move every unacknowledged alert whose delay ran out to its next step. Returns how
    many moved. Run by Celery beat; safe to run twice at once (a conditional update
    decides which run moves an alert)."""
    now = now or timezone.now()
    moved = 0
    due = SafeguardingAlert.objects.filter(acknowledged_at__isnull=True, next_step_at__lte=now).values_list(
        "pk", "step"
    )
    for alert_id, step in list(due[:500]):
        with transaction.atomic():
            won = SafeguardingAlert.objects.filter(
                pk=alert_id, step=step, acknowledged_at__isnull=True, next_step_at__lte=now
            ).update(step=step + 1, next_step_at=None)
            if not won:
                continue
            alert = SafeguardingAlert.objects.select_related("school", "classroom").get(pk=alert_id)
            audit_record(
                actor=None,
                action="alert.escalate",
                school=alert.school,
                target=_("alert %(id)d in %(classroom)s") % {"id": alert.pk, "classroom": alert.classroom.name},
                details={"alert": alert.pk, "step": step + 1, "minutes": alert.school.alert_ack_minutes},
            )
            _tell(alert, step + 1, now)
            moved += 1
    if moved:
        log.warning("%d unacknowledged safeguarding alert(s) moved on to the next person", moved)
    return moved


# E-mails: no student words in them (they leave the platform); the link opens the alert.


def _after_commit_send_email(notice_id: int) -> None:
    def start():
        threading.Thread(target=_send_in_thread, args=(notice_id,), name="alert-email", daemon=True).start()

    transaction.on_commit(start)


def _send_in_thread(notice_id: int) -> None:
    try:
        alert_email_send(notice_id=notice_id)
    except Exception:  # the periodic task retries what is owed
        log.exception("sending alert e-mail %s failed", notice_id)
    finally:
        close_old_connections()


def _email_for(notice: AlertNotice) -> EmailMessage:
    alert, person = notice.alert, notice.person
    with translation.override(person.language or settings.LANGUAGE_CODE):
        category = str(classifier.CATEGORY_LABELS.get(alert.category, alert.category))
        url = settings.TUTOR_SITE_URL + reverse("safeguarding_alert", args=[alert.pk])
        values = {"classroom": alert.classroom.name, "school": alert.school.name, "category": category, "url": url}
        if notice.why == "admin":
            subject = _("Urgent safeguarding alert not acknowledged: %(classroom)s") % values
            intro = _(
                "An urgent safeguarding alert in %(classroom)s (%(school)s) has not been acknowledged by its "
                "teachers or the designated staff. Please make sure someone acts now."
            )
        else:
            subject = _("Urgent safeguarding alert: %(classroom)s") % values
            intro = _(
                "A student of %(classroom)s (%(school)s) wrote a message that may mean they are at risk "
                "(%(category)s). The student has been sent the school's supportive message."
            )
        body = "\n\n".join(
            [
                intro % values,
                _("Open the alert and acknowledge it, so that the next person is not alerted:") + "\n" + url,
                _("The student's words are not in this e-mail: read them in the tutor."),
            ]
        )
    return EmailMessage(subject=subject, body=body, to=[person.email])


def alert_email_send(*, notice_id: int, now: datetime | None = None) -> bool:
    """Send one alert e-mail that is owed. True if it went out. On failure it is marked
    to be retried later, and the failure is logged and audited."""
    now = now or timezone.now()
    claimed = AlertNotice.objects.filter(
        pk=notice_id,
        channel=AlertNotice.Channel.EMAIL,
        state__in=(AlertNotice.State.PENDING, AlertNotice.State.FAILED),
    ).update(state=AlertNotice.State.SENDING, claimed_at=now)
    if not claimed:
        return False
    notice = AlertNotice.objects.select_related("alert__school", "alert__classroom", "person").get(pk=notice_id)
    if notice.alert.acknowledged_at is not None:
        AlertNotice.objects.filter(pk=notice_id).update(state=AlertNotice.State.CANCELLED)
        return False
    if not notice.person.email:  # removed since: the banner is all they get
        AlertNotice.objects.filter(pk=notice_id).update(state=AlertNotice.State.NO_ADDRESS)
        return False
    target = _("alert %(id)d: %(person)s") % {"id": notice.alert_id, "person": _person_name(notice.person)}
    try:
        _email_for(notice).send(fail_silently=False)
    except Exception as exc:
        attempts = notice.attempts + 1
        delay = EMAIL_RETRY_DELAYS[min(attempts, len(EMAIL_RETRY_DELAYS)) - 1]
        give_up = attempts >= EMAIL_MAX_ATTEMPTS
        error = f"{type(exc).__name__}: {exc}"[:200]
        AlertNotice.objects.filter(pk=notice_id).update(
            state=AlertNotice.State.FAILED,
            attempts=attempts,
            last_error=error,
            next_try_at=None if give_up else timezone.now() + timedelta(seconds=delay),
        )
        log.warning(
            "alert e-mail %s (alert %s) not sent, attempt %d: %s; %s",
            notice_id,
            notice.alert_id,
            attempts,
            error,
            "giving up" if give_up else f"retrying in {delay} s",
        )
        with transaction.atomic():
            audit_record(
                actor=None,
                action="alert.email_failed",
                school=notice.alert.school,
                target=target,
                subject=notice.person,
                details={"alert": notice.alert_id, "attempt": attempts, "error": error},
            )
        return False
    with transaction.atomic():
        AlertNotice.objects.filter(pk=notice_id).update(
            state=AlertNotice.State.SENT, sent_at=timezone.now(), attempts=notice.attempts + 1, last_error=""
        )
        audit_record(
            actor=None,
            action="alert.email_sent",
            school=notice.alert.school,
            target=target,
            subject=notice.person,
            details={"alert": notice.alert_id, "attempt": notice.attempts + 1},
        )
    return True


def alert_emails_retry(*, now: datetime | None = None) -> int:
    """Send the alert e-mails that are owed: failed ones whose retry time came, and ones
    whose sender died. Returns how many went out."""
    now = now or timezone.now()
    email = AlertNotice.objects.filter(channel=AlertNotice.Channel.EMAIL, alert__acknowledged_at__isnull=True)
    email.filter(state=AlertNotice.State.SENDING, claimed_at__lte=now - EMAIL_SENDING_LOST).update(
        state=AlertNotice.State.FAILED, next_try_at=now
    )
    owed = email.filter(
        Q(state=AlertNotice.State.FAILED, next_try_at__lte=now)
        | Q(state=AlertNotice.State.PENDING, created_at__lte=now - EMAIL_PENDING_GRACE)
    ).values_list("pk", flat=True)
    return sum(alert_email_send(notice_id=notice_id) for notice_id in list(owed[:200]))


# Acknowledging, reading, and teaching the classifier.


def alert_acknowledge(*, alert: SafeguardingAlert, person: User) -> SafeguardingAlert:
    """`person` takes the alert in hand: it stops moving on, and its e-mails still owed
    are not sent. Raises AlertConflict, saying who, when someone acknowledged it first."""
    now = timezone.now()
    with transaction.atomic():
        won = SafeguardingAlert.objects.filter(pk=alert.pk, acknowledged_at__isnull=True).update(
            acknowledged_by=person, acknowledged_at=now, next_step_at=None
        )
        alert = SafeguardingAlert.objects.select_related("school", "classroom", "acknowledged_by").get(pk=alert.pk)
        if not won:
            who = _person_name(alert.acknowledged_by) if alert.acknowledged_by else _("Someone")
            raise AlertConflict(
                _("%(who)s already acknowledged this alert, at %(when)s.")
                % {"who": who, "when": timezone.localtime(alert.acknowledged_at).strftime("%H:%M")},
                acknowledged_by=who,
            )
        AlertNotice.objects.filter(
            alert=alert,
            channel=AlertNotice.Channel.EMAIL,
            state__in=(AlertNotice.State.PENDING, AlertNotice.State.FAILED),
        ).update(state=AlertNotice.State.CANCELLED)
        audit_record(
            actor=person,
            action="alert.acknowledge",
            school=alert.school,
            target=_("alert %(id)d in %(classroom)s") % {"id": alert.pk, "classroom": alert.classroom.name},
            details={"alert": alert.pk, "after_seconds": round((now - alert.created_at).total_seconds())},
        )
        _after_commit_tell_sockets(alert.pk)
    return alert


def alert_opened(*, alert: SafeguardingAlert, person: User) -> None:
    """Record that `person` read the alert's text (every opening is in the audit log)."""
    with transaction.atomic():
        audit_record(
            actor=person,
            action="alert.open",
            school=alert.school,
            target=_("alert %(id)d in %(classroom)s") % {"id": alert.pk, "classroom": alert.classroom.name},
            details={"alert": alert.pk},
        )


_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_URL = re.compile(r"\b(?:https?://|www\.)\S+", re.I)
_HANDLE = re.compile(r"(?<!\w)@\w{2,}")
_PHONE = re.compile(r"(?<!\w)\+?\d(?:[\s.-]?\d){7,}(?!\w)")


def deidentify(text: str, *, names: Iterable[str]) -> str:
    """The message without what says who anyone is: e-mail addresses, links, handles,
    phone numbers, and the names of the school's people (first names, last names,
    usernames). The admin reads and prunes the result; it is not a guarantee."""
    text = _EMAIL.sub("[email]", text or "")
    text = _URL.sub("[link]", text)
    text = _HANDLE.sub("[handle]", text)
    text = _PHONE.sub("[phone]", text)
    words = sorted({n.strip() for n in names if n and len(n.strip()) >= 2}, key=len, reverse=True)
    if words:
        pattern = re.compile(r"(?<!\w)(?:" + "|".join(re.escape(w) for w in words) + r")(?!\w)", re.I)
        text = pattern.sub("[name]", text)
    return text


def _names_of_school(school_id: int) -> list[str]:
    names = []
    for first, last, username in User.objects.filter(school_id=school_id).values_list(
        "first_name", "last_name", "username"
    ):
        names += [first, last, username, *first.split(), *last.split()]
    return names


def alert_mark(*, alert: SafeguardingAlert, person: User, outcome: str, category: str = "") -> SafeguardingExample:
    """A reviewer says whether the alert was a false alarm or a real concern: the message,
    de-identified, becomes one of the school's examples (a false alarm as "ok", a real
    concern under its category), so the same message is classified so next time. Marking
    again replaces the example. Marking acknowledges the alert if nobody had."""
    if outcome not in (SafeguardingAlert.Outcome.FALSE_ALARM, SafeguardingAlert.Outcome.REAL_CONCERN):
        raise ActionRefused(_("Say whether it was a false alarm or a real concern."))
    if outcome == SafeguardingAlert.Outcome.FALSE_ALARM:
        label = "ok"
    else:
        category = category or alert.category
        if category not in classifier.CATEGORY_CLASS or category == classifier.OK:
            raise ActionRefused(_("Choose what the concern is about."))
        label = classifier.CATEGORY_CLASS[category]
    text = deidentify(alert.question.text, names=_names_of_school(alert.school_id))
    vector = classifier.get_classifier().example_vector(text)  # before the transaction: ~10 ms
    now = timezone.now()
    with transaction.atomic():
        if alert.acknowledged_at is None:
            SafeguardingAlert.objects.filter(pk=alert.pk, acknowledged_at__isnull=True).update(
                acknowledged_by=person, acknowledged_at=now, next_step_at=None
            )
        SafeguardingAlert.objects.filter(pk=alert.pk).update(outcome=outcome, outcome_by=person, outcome_at=now)
        SafeguardingExample.objects.filter(alert=alert).delete()
        example = SafeguardingExample.objects.create(
            school_id=alert.school_id,
            label=label,
            text=text,
            vector=embeddings.to_bytes(vector),
            alert=alert,
            added_by=person,
        )
        audit_record(
            actor=person,
            action=f"alert.{outcome}",
            school=alert.school,
            target=_("alert %(id)d in %(classroom)s") % {"id": alert.pk, "classroom": alert.classroom.name},
            details={"alert": alert.pk, "example": example.pk, "label": label},
        )
        _after_commit_tell_sockets(alert.pk)
    return example


def safeguarding_example_delete(*, actor: User, example: SafeguardingExample) -> None:
    """The school admin removes one of the school's added examples."""
    if actor.school_id != example.school_id:
        raise ActionRefused(_("This belongs to another school."))
    with transaction.atomic():
        if not SafeguardingExample.objects.filter(pk=example.pk).delete()[0]:
            raise ActionRefused(_("This example was already removed."))
        audit_record(
            actor=actor,
            action="safeguarding.example_delete",
            school=example.school,
            target=str(classifier.CATEGORY_LABELS.get(classifier.CLASSES.get(example.label, ("ok",))[0], "")),
            details={"example": example.pk, "label": example.label},
        )
