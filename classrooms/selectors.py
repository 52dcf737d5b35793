"""Who may see what, for schools and classes. One place for each rule."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.db.models import Q, QuerySet
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _

from classrooms import schedule
from classrooms.models import (
    REVIEW_ROLES,
    AuditEntry,
    Classroom,
    Membership,
    SafeguardingContact,
    School,
    SupportiveMessage,
    User,
)


def classrooms_of_student(user: User) -> QuerySet[Classroom]:
    return Classroom.objects.filter(
        memberships__user=user, memberships__role=Membership.Role.STUDENT, archived=False
    ).order_by("name")


def classrooms_reviewed_by(user: User) -> QuerySet[Classroom]:
    """Classes whose replies this person may review: they teach or review the class, the
    class is not archived, and their account is active, read from the database (a
    long-lived socket's user object is stale).

    The one answer to "may this person review this class's replies?": the review queue,
    claims, decisions, stats and the review socket all ask it here.
    """
    if not getattr(user, "is_authenticated", False):
        return Classroom.objects.none()
    return Classroom.objects.filter(
        archived=False,
        memberships__user=user,
        memberships__role__in=REVIEW_ROLES,
        memberships__user__is_active=True,
    ).order_by("name")


def classrooms_taught_by(user: User) -> QuerySet[Classroom]:
    """Classes this person administers as a teacher (settings, join code)."""
    return Classroom.objects.filter(
        memberships__user=user, memberships__role=Membership.Role.TEACHER, archived=False
    ).order_by("name")


def classroom_for_student(user: User, classroom_id: int) -> Classroom:
    """The class, if this person is its student; 404 otherwise (missing and forbidden look alike)."""
    classroom = classrooms_of_student(user).filter(pk=classroom_id).first()
    if classroom is None:
        raise Http404
    return classroom


def classroom_for_teacher(user: User, classroom_id: int) -> Classroom:
    """The class whose settings (tutor, quotas, hours, pause, join code, students' login
    cards) this person runs: they teach it, or they are the admin of its school (who need
    not add themselves as its teacher). 404 otherwise; archived classes are not run."""
    classroom = classrooms_taught_by(user).filter(pk=classroom_id).first()
    if classroom is None and is_school_admin(user):
        classroom = Classroom.objects.filter(pk=classroom_id, school_id=user.school_id, archived=False).first()
    if classroom is None:
        raise Http404
    return classroom


# School administration: a school admin acts only inside their own school.

STAFF_ROLES = REVIEW_ROLES


def is_school_admin(user: User) -> bool:
    return bool(user.is_authenticated and user.is_active and user.is_school_admin and user.school_id is not None)


def classrooms_of_school(school: School) -> QuerySet[Classroom]:
    return Classroom.objects.filter(school=school).order_by("archived", "name")


def classroom_for_school_admin(user: User, classroom_id: int) -> Classroom:
    """A class of this admin's school (archived ones too); 404 for missing and other schools alike."""
    if not is_school_admin(user):
        raise Http404
    classroom = Classroom.objects.select_related("school").filter(pk=classroom_id, school_id=user.school_id).first()
    if classroom is None:
        raise Http404
    return classroom


def people_of_school(school: School, *, search: str = "") -> QuerySet[User]:
    """Accounts a school admin manages: everyone of the school except the platform's operators."""
    people = User.objects.filter(school=school, is_superuser=False)
    search = search.strip()
    if search:
        people = people.filter(
            Q(username__icontains=search)
            | Q(first_name__icontains=search)
            | Q(last_name__icontains=search)
            | Q(student_number__iexact=search)
        )
    return people.order_by("last_name", "first_name", "username")


def person_for_school_admin(user: User, person_id: int) -> User:
    """A person of this admin's school; 404 for missing and other schools alike."""
    if not is_school_admin(user):
        raise Http404
    person = people_of_school(user.school).filter(pk=person_id).first()
    if person is None:
        raise Http404
    return person


def is_staff_member(person: User) -> bool:
    """Teaches or reviews somewhere, or administers a school: not a student account."""
    return (
        person.is_school_admin
        or person.is_superuser
        or Membership.objects.filter(user=person, role__in=STAFF_ROLES).exists()
        # A school's sign-in service that the school's own rule reads as a teacher's (identity).
        or person.external_identities.filter(role="teacher").exists()
    )


def members_of(classroom: Classroom, *, roles: Iterable[str]) -> QuerySet[Membership]:
    return (
        Membership.objects.filter(classroom=classroom, role__in=roles)
        .select_related("user")
        .order_by("user__last_name", "user__first_name", "user__username")
    )


def students_of(classroom: Classroom) -> QuerySet[User]:
    return User.objects.filter(memberships__classroom=classroom, memberships__role=Membership.Role.STUDENT).order_by(
        "last_name", "first_name", "username"
    )


def memberships_of(person: User) -> QuerySet[Membership]:
    return Membership.objects.filter(user=person).select_related("classroom").order_by("classroom__name")


def audit_entries_of_school(school: School) -> QuerySet[AuditEntry]:
    return AuditEntry.objects.filter(school=school).order_by("-at", "-id")


def classroom_by_join_code(code: str) -> Classroom | None:
    """The class a typed join code names, whatever its state (the caller says why it is refused)."""
    code = normalise_join_code(code)
    if not code:
        return None
    return Classroom.objects.select_related("school").filter(join_code=code).first()


def normalise_join_code(code: str) -> str:
    """What students type from a board: any case, with spaces or dashes."""
    return "".join(ch for ch in (code or "").upper() if ch.isalnum())[:12]


# Safeguarding: who is alerted, and whether students may chat.


def safeguarding_contacts(school: School) -> QuerySet[SafeguardingContact]:
    """The school's designated safeguarding staff who can be alerted now (active
    accounts), in the order an unacknowledged alert moves down."""
    return (
        SafeguardingContact.objects.filter(school=school, person__is_active=True, person__school=school)
        .select_related("person")
        .order_by("position", "id")
    )


def safeguarding_contact_for_school_admin(user: User, contact_id: int) -> SafeguardingContact:
    """An entry of this admin's school's list; 404 for missing and other schools alike."""
    if not is_school_admin(user):
        raise Http404
    contact = (
        SafeguardingContact.objects.select_related("person").filter(pk=contact_id, school_id=user.school_id).first()
    )
    if contact is None:
        raise Http404
    return contact


def is_safeguarding_contact(user: User, school_id: int | None) -> bool:
    if not user.is_authenticated or not user.is_active or school_id is None:
        return False
    return SafeguardingContact.objects.filter(school_id=school_id, person=user, person__school_id=school_id).exists()


def may_be_safeguarding_contact(person: User) -> bool:
    """Staff, not a student: designated staff read students' urgent messages."""
    return person.is_active and not Membership.objects.filter(user=person, role=Membership.Role.STUDENT).exists()


def supportive_messages_of(school: School) -> dict[str, SupportiveMessage | None]:
    """The school's approved supportive message in each language of the site (None where
    none is approved yet)."""
    approved = {m.language: m for m in SupportiveMessage.objects.filter(school=school).select_related("approved_by")}
    return {code: approved.get(code) for code, _name in settings.LANGUAGES}


def supportive_message_for(school_id: int, language: str) -> SupportiveMessage | None:
    """The approved supportive message in this language, else in the site's language, else any."""
    messages = {m.language: m for m in SupportiveMessage.objects.filter(school_id=school_id)}
    return messages.get(language) or messages.get(settings.LANGUAGE_CODE) or next(iter(messages.values()), None)


def student_chat_blockers(school: School) -> list[str]:
    """Why the school's students may not chat with the tutor yet; empty when they may.

    The one place for this rule: an urgent message must reach a designated person, and
    the student must get an approved supportive message at once, in their language.
    """
    reasons = []
    if not safeguarding_contacts(school).exists():
        reasons.append(_("Nobody is designated to receive urgent safeguarding alerts. Name at least one person."))
    approved = supportive_messages_of(school)
    missing = [name for code, name in settings.LANGUAGES if approved[code] is None]
    if missing:
        reasons.append(
            _("The supportive message is not approved yet in: %(languages)s.")
            % {"languages": ", ".join(str(n) for n in missing)}
        )
    return reasons


def student_chat_is_open(school: School) -> bool:
    """Students of this school may ask the tutor: the admin opened it, and nothing blocks it."""
    return school.student_chat_open and not student_chat_blockers(school)


def school_admins(school: School) -> QuerySet[User]:
    return User.objects.filter(school=school, is_school_admin=True, is_active=True).order_by("pk")


def may_receive_alerts(user: User) -> bool:
    """Reviews a class, is designated safeguarding staff, or runs a school: the people
    whose pages show urgent alerts."""
    if not user.is_authenticated or not user.is_active:
        return False
    return (
        is_school_admin(user) or is_safeguarding_contact(user, user.school_id) or classrooms_reviewed_by(user).exists()
    )


def audit_action_labels() -> dict[str, str]:
    """What each audit action means, in words an admin reads."""
    from django.utils.translation import gettext as _

    return {
        "class.create": _("created a class"),
        "class.rename": _("renamed a class"),
        "class.archive": _("archived a class"),
        "class.restore": _("restored a class"),
        "class.staff_assign": _("assigned a teacher"),
        "class.student_enrol": _("enrolled a student"),
        "class.member_remove": _("removed someone from a class"),
        "class.student_move": _("moved a student"),
        "class.passwords_reset": _("reset a class's passwords"),
        "class.accounts_create": _("created student accounts"),
        "class.tutor_settings": _("changed the tutor's settings"),
        "class.model": _("chose the model that drafts a class's replies"),
        "class.join_code_rotate": _("made a new join code"),
        "class.join_code_on": _("turned the join code on"),
        "class.join_code_off": _("turned the join code off"),
        "class.join": _("joined a class with a code"),
        "person.create": _("created a staff account"),
        "person.sign_up": _("signed up with a join code"),
        "person.deactivate": _("deactivated an account"),
        "person.reactivate": _("reactivated an account"),
        "person.password_reset": _("reset a password"),
        "person.export": _("exported a student's data"),
        "person.delete": _("deleted a student and their data"),
        "roster.import": _("imported a roster"),
        "school.retention": _("changed how long conversations are kept"),
        "school.limits": _("changed the ceilings on classes' quotas or the time zone"),
        "class.limits": _("changed a class's quotas or opening hours"),
        "material.add": _("added course material"),
        "material.replace": _("replaced a course document's file"),
        "material.rename": _("renamed a course document"),
        "material.delete": _("deleted course material"),
        "class.paused": _("paused a class's tutor"),
        "class.resumed": _("opened a class's tutor again"),
        "review.split": _("took a question out of its group"),
        "school.models": _("changed which models classes may use"),
        "school.training_on": _("allowed review decisions to improve the school's model"),
        "school.training_off": _("stopped review decisions improving the school's model"),
        "training.export": _("exported review decisions for training"),
        "school.model_trial": _("put a model on trial for a share of drafts"),
        "school.model_trial_stop": _("stopped a model's trial"),
        "school.model_promote": _("made the model on trial the default"),
        "school.model_rollback": _("went back to the previous default model"),
        "review.as_drafted": _("approved a draft"),
        "review.edited": _("edited and approved a draft"),
        "review.teacher_reply": _("rejected a draft and wrote the reply"),
        "review.rejected": _("rejected a draft"),
        "review.regenerate": _("asked for a new draft"),
        "conversation.open": _("read a student's conversation"),
        "safeguarding.contact_add": _("named a safeguarding contact"),
        "safeguarding.contact_remove": _("removed a safeguarding contact"),
        "safeguarding.contact_move": _("changed the order of the safeguarding contacts"),
        "safeguarding.message_approve": _("approved a supportive message"),
        "safeguarding.delay": _("changed how long an alert waits before it moves on"),
        "safeguarding.chat_open": _("opened the tutor to students"),
        "safeguarding.chat_close": _("closed the tutor to students"),
        "safeguarding.example_delete": _("removed a safeguarding example"),
        "alert.raise": _("an urgent alert was raised"),
        "alert.notify": _("alerted someone"),
        "alert.email_sent": _("an alert e-mail was sent"),
        "alert.email_failed": _("an alert e-mail could not be sent"),
        "alert.escalate": _("an unacknowledged alert moved on"),
        "alert.open": _("read an alert"),
        "alert.acknowledge": _("acknowledged an alert"),
        "alert.false_alarm": _("marked an alert as a false alarm"),
        "alert.real_concern": _("marked an alert as a real concern"),
        "alert.supportive_message": _("sent the supportive message to a student"),
        # Sign-in services and learning platforms (classrooms/identity)
        "identity.account_create": _("got an account through a sign-in service or platform"),
        "identity.link": _("linked a sign-in service to an account"),
        "identity.provider_add": _("added a sign-in service"),
        "identity.provider_remove": _("removed a sign-in service"),
        "identity.rules": _("changed a sign-in service's rules"),
        "identity.platform_invite": _("made a platform registration address"),
        "identity.platform_register": _("registered a learning platform"),
        "identity.platform_remove": _("removed a learning platform"),
        "identity.deployment_on": _("turned a platform deployment on"),
        "identity.deployment_off": _("turned a platform deployment off"),
        "identity.course_link": _("linked a course to a class"),
        "identity.roster_sync": _("read a course's roster"),
    }


_REPLY_TARGET = re.compile(r"^reply (\d+)$")


def audit_lines(entries: Iterable[AuditEntry]) -> list[AuditEntry]:
    """The audit entries with what they say in the reader's language: entry.label (what
    was done) and entry.about (what it was done to). A reply is named by its student and
    class ("reply 6" meant nothing to an admin); a roster import by its number of students."""
    from django.utils.translation import gettext as _
    from django.utils.translation import ngettext

    entries = list(entries)
    labels = audit_action_labels()
    reply_ids = {int(m.group(1)) for e in entries if (m := _REPLY_TARGET.match(e.target))}
    replies = {}
    if reply_ids:
        from django.apps import apps  # the tutor app's messages, read by name: classrooms imports nothing of tutor

        replies = {
            row["pk"]: row
            for row in apps.get_model("tutor", "Message")
            .objects.filter(pk__in=reply_ids)
            .values("pk", "conversation__classroom__name", "conversation__student__first_name",
                    "conversation__student__last_name", "conversation__student__username")
        }  # fmt: skip
    for entry in entries:
        entry.label = labels.get(entry.action, entry.action)
        entry.about = entry.target
        match = _REPLY_TARGET.match(entry.target)
        if match:
            row = replies.get(int(match.group(1)))
            if row is None:
                entry.about = _("a reply, since deleted")
            else:
                student = (
                    " ".join(
                        part
                        for part in (row["conversation__student__first_name"], row["conversation__student__last_name"])
                        if part
                    )
                    or row["conversation__student__username"]
                    or _("a deleted student")
                )
                entry.about = _("the reply to %(student)s in %(class)s") % {
                    "student": student,
                    "class": row["conversation__classroom__name"],
                }
        elif entry.action == "roster.import":
            n = entry.details.get("rows")
            if n is None:
                digits = re.match(r"^(\d+)", entry.target)
                n = int(digits.group(1)) if digits else None
            if n is not None:
                entry.about = ngettext("%(n)d student in the file", "%(n)d students in the file", n) % {"n": n}
    return entries


# The language models a school may choose: declared by the deployment in settings
# (TUTOR_MODELS, see tutor/model_settings.py), chosen per school and per class here.


def declared_models() -> list[dict]:
    """Every model the deployment declares, the deployment's default first."""
    from django.conf import settings

    return settings.TUTOR_MODELS


def model_label(key: str) -> str:
    """What teachers read for the model `key`, in the current language ("" if unknown)."""
    from django.utils.translation import get_language

    model = next((m for m in declared_models() if m["key"] == key), None)
    if model is None:
        return ""
    label = model["label"]
    if isinstance(label, dict):
        language = (get_language() or "en").split("-")[0]
        return label.get(language) or label.get("en") or next(iter(label.values()))
    return str(label)


def _declared_keys() -> list[str]:
    return [m["key"] for m in declared_models()]


def school_default_model(school: School) -> str:
    """The key of the model a school's classes use unless a teacher chooses another."""
    keys = _declared_keys()
    return school.default_model if school.default_model in keys else keys[0]


def school_allowed_models(school: School) -> list[str]:
    """The keys a teacher of this school may choose from, the school's default first."""
    default = school_default_model(school)
    allowed = set(school.allowed_models or [])
    return [default] + [k for k in _declared_keys() if k in allowed and k != default]


def classroom_model(classroom: Classroom) -> str:
    """The key of the model that drafts this class's replies: the teacher's choice while
    the school allows it, else the school's default."""
    school = classroom.school
    if classroom.model_key and classroom.model_key in school_allowed_models(school):
        return classroom.model_key
    return school_default_model(school)


def model_for_new_reply(classroom: Classroom, *, draw: float) -> str:
    """classroom_model, except that a class on the school's default model has a share of
    its new replies (school.trial_share percent: `draw`, in [0, 1), below it) drafted by
    the school's model on trial. A teacher's own choice of model is left alone."""
    key = classroom_model(classroom)
    school = classroom.school
    if (
        school.trial_share
        and school.trial_model in _declared_keys()
        and key == school_default_model(school)
        and draw * 100 < school.trial_share
    ):
        return school.trial_model
    return key


# A class's quotas and opening hours.


def school_zone(school: School) -> ZoneInfo:
    """The school's time zone (the deployment's where it has none, or an unknown one)."""
    try:
        return ZoneInfo(school.time_zone or settings.TIME_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(settings.TIME_ZONE)


def school_ceilings(school: School) -> dict[str, int]:
    """The most a teacher of this school may allow per student: per_hour, per_day, unanswered."""
    return {
        "per_hour": school.ceiling_per_hour or settings.TUTOR_QUESTIONS_PER_HOUR,
        "per_day": school.ceiling_per_day or settings.TUTOR_QUESTIONS_PER_DAY,
        "unanswered": school.ceiling_unanswered or settings.TUTOR_MAX_PENDING_PER_STUDENT,
    }


def classroom_quotas(classroom: Classroom) -> dict[str, int]:
    """The class's quotas per student: the teacher's, or the school's ceiling where the teacher
    set none or the admin has since lowered the ceiling below it."""
    ceilings = school_ceilings(classroom.school)
    chosen = {
        "per_hour": classroom.questions_per_hour,
        "per_day": classroom.questions_per_day,
        "unanswered": classroom.max_unanswered,
    }
    return {key: min(chosen[key] or ceiling, ceiling) for key, ceiling in ceilings.items()}


@dataclass(frozen=True)
class Availability:
    """May students ask in the class now? reason: "" (open), "paused" or "hours";
    opens_at: when the hours next open (None when paused or always open)."""

    open: bool
    reason: str = ""
    opens_at: datetime | None = None


def classroom_availability(classroom: Classroom, at: datetime | None = None) -> Availability:
    """The one answer to "may a student ask in this class now?" for the page, the socket
    and tutor.services.question_ask."""
    if classroom.paused:
        return Availability(open=False, reason="paused")
    at = at or timezone.now()
    zone = school_zone(classroom.school)
    if schedule.is_open(classroom.opening_hours, at, zone):
        return Availability(open=True)
    return Availability(open=False, reason="hours", opens_at=schedule.next_opening(classroom.opening_hours, at, zone))


def classroom_availability_changes_at(classroom: Classroom, at: datetime | None = None) -> datetime | None:
    """When the class's hours next open or close it (None: they never do, or it is
    paused, which only a teacher ends): when an open chat re-reads its availability."""
    if classroom.paused:
        return None
    return schedule.next_change(classroom.opening_hours, at or timezone.now(), school_zone(classroom.school))


def classroom_has_teacher(classroom: Classroom) -> bool:
    """Someone (an active teacher or reviewer) will review this class's drafts."""
    return classroom.memberships.filter(role__in=REVIEW_ROLES, user__is_active=True).exists()
