"""Writes for schools, classes and people.

Each admin action is one atomic function that records itself in the school's audit log
inside its own transaction. When an action changes what a person may reach (removed
from a class, class archived, account deactivated or deleted), their open sockets are
told to re-check access once the change is committed.

Views find the objects through the access selectors (404 for "not yours"); the
services check again that everything belongs to the acting admin's school.
"""

from __future__ import annotations

import logging
import secrets
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from classrooms import roster, selectors, signals
from classrooms.models import (
    DEFAULT_SUPPORTIVE_MESSAGES,
    AuditEntry,
    Classroom,
    Membership,
    SafeguardingContact,
    School,
    SupportiveMessage,
    User,
    new_join_code,
)

log = logging.getLogger(__name__)

JOIN_CODE_VALID_DAYS = 30
JOIN_REFUSALS_LIMIT = 20  # wrong codes a signed-in person may type in JOIN_REFUSALS_WINDOW
# Sign-ups are counted by address, and a whole class may sign up from one school address.
SIGN_UP_REFUSALS_LIMIT = 200
JOIN_REFUSALS_WINDOW = 15 * 60
BULK_ACCOUNTS_MAX = 100

PASSWORD_CONSONANTS = "bdfgkmnprstvz"
PASSWORD_VOWELS = "aeiou"


class ActionRefused(Exception):
    """A refusal the person asking should read; nothing was changed."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class JoinRefused(ActionRefused):
    pass


class RosterRefused(ActionRefused):
    def __init__(self, message: str, preview: roster.RosterPreview):
        super().__init__(message)
        self.preview = preview


@dataclass(frozen=True)
class LoginCard:
    """One student's login, shown once on the printed sheet; only the hash is stored."""

    classroom: str
    name: str
    username: str
    password: str


def audit_record(
    *,
    actor: User | None,
    action: str,
    school: School | None,
    target: str = "",
    details: dict | None = None,
    subject: User | None = None,
) -> AuditEntry:
    """Add one line to the school's audit log (call inside the transaction of the change).

    `subject` is the person the action was about: deleting their account later scrubs
    their name from the line.
    """
    return AuditEntry.objects.create(
        school=school,
        actor=actor,
        actor_name=(actor.get_username() if actor else "system"),
        action=action,
        target=target[:200],
        details=details or {},
        subject=subject,
    )


def _person_label(person: User) -> str:
    full = person.get_full_name()
    return f"{full} ({person.username})" if full else person.username


def _recheck_access_after_commit(user_ids: Iterable[int]) -> None:
    """Their open sockets re-check access once the change is committed (see
    classrooms.signals.access_changed)."""
    ids = sorted(set(user_ids))
    if ids:
        transaction.on_commit(lambda: signals.access_changed.send(sender=User, user_ids=ids))


def _check_school(actor: User, *objects) -> School:
    """Defence in depth: the objects must belong to the admin's own school."""
    school_id = actor.school_id
    for obj in objects:
        obj_school = obj.id if isinstance(obj, School) else obj.school_id
        if school_id is None or obj_school != school_id:
            raise ActionRefused(_("This belongs to another school."))
    return actor.school


def _ascii(text: str) -> str:
    text = unicodedata.normalize("NFKD", text or "")
    return "".join(ch for ch in text.lower() if ch.isascii() and ch.isalnum())


def username_new(first_name: str, last_name: str) -> str:
    """A short login a young student can type: first name, initial, digits (sam.m → samm42)."""
    base = (_ascii(first_name)[:10] + _ascii(last_name)[:1]) or "student"
    for digits in (2, 2, 2, 3, 3, 3, 4, 4, 4, 6, 6, 6):
        candidate = f"{base}{secrets.randbelow(10**digits):0{digits}d}"
        if not User.objects.filter(username__iexact=candidate).exists():
            return candidate
    raise ActionRefused(_("Could not find a free username; try again."))


def password_new() -> str:
    """Easy to read aloud and to type (bakomute42); about 31 bits, with login lock-out."""
    syllables = "".join(secrets.choice(PASSWORD_CONSONANTS) + secrets.choice(PASSWORD_VOWELS) for _ in range(4))
    return f"{syllables}{secrets.randbelow(100):02d}"


def _unused_join_code() -> str:
    for _attempt in range(20):
        code = new_join_code()
        if not Classroom.objects.filter(join_code=code).exists():
            return code
    raise ActionRefused(_("Could not make a new join code; try again."))


def _join_code_expiry():
    return timezone.now() + timedelta(days=JOIN_CODE_VALID_DAYS)


# Classes


def _clean_class_name(school: School, name: str, *, exclude_id: int | None = None) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise ActionRefused(_("A class needs a name."))
    if len(name) > 200:
        raise ActionRefused(_("The name is too long (at most 200 characters)."))
    if roster.looks_like_formula(name):
        raise ActionRefused(_("A class name may not start with =, +, - or @."))
    clash = Classroom.objects.filter(school=school, name__iexact=name).exclude(pk=exclude_id)
    if clash.exists():
        raise ActionRefused(_("The school already has a class called “%(name)s”.") % {"name": name})
    return name


def classroom_create(*, actor: User, school: School, name: str) -> Classroom:
    _check_school(actor, school)
    with transaction.atomic():
        name = _clean_class_name(school, name)
        classroom = Classroom.objects.create(
            school=school, name=name, join_code=_unused_join_code(), join_code_expires_at=_join_code_expiry()
        )
        audit_record(
            actor=actor, action="class.create", school=school, target=name, details={"classroom": classroom.id}
        )
    return classroom


def classroom_rename(*, actor: User, classroom: Classroom, name: str) -> Classroom:
    school = _check_school(actor, classroom)
    with transaction.atomic():
        name = _clean_class_name(school, name, exclude_id=classroom.id)
        old = classroom.name
        if name == old:
            return classroom
        classroom.name = name
        classroom.save(update_fields=["name"])
        audit_record(
            actor=actor,
            action="class.rename",
            school=school,
            target=name,
            details={"classroom": classroom.id, "from": old},
        )
    return classroom


def _member_ids(classroom: Classroom) -> list[int]:
    return list(Membership.objects.filter(classroom=classroom).values_list("user_id", flat=True))


def classroom_archive(*, actor: User, classroom: Classroom) -> Classroom:
    """Nobody reaches an archived class; its people and conversations are kept for restoring."""
    school = _check_school(actor, classroom)
    with transaction.atomic():
        if not Classroom.objects.filter(pk=classroom.pk, archived=False).update(archived=True):
            raise ActionRefused(_("This class is already archived."))
        classroom.archived = True
        audit_record(
            actor=actor,
            action="class.archive",
            school=school,
            target=classroom.name,
            details={"classroom": classroom.id},
        )
        _recheck_access_after_commit(_member_ids(classroom))
    return classroom


def classroom_restore(*, actor: User, classroom: Classroom) -> Classroom:
    school = _check_school(actor, classroom)
    with transaction.atomic():
        if not Classroom.objects.filter(pk=classroom.pk, archived=True).update(archived=False):
            raise ActionRefused(_("This class is not archived."))
        classroom.archived = False
        audit_record(
            actor=actor,
            action="class.restore",
            school=school,
            target=classroom.name,
            details={"classroom": classroom.id},
        )
    return classroom


# People in classes


def _refuse_if_archived(classroom: Classroom) -> None:
    if classroom.archived:
        raise ActionRefused(_("This class is archived. Restore it first."))


def staff_assign(*, actor: User, classroom: Classroom, person: User, role: str = Membership.Role.TEACHER) -> Membership:
    """Make a person a teacher (or reviewer) of the class."""
    school = _check_school(actor, classroom, person)
    if role not in (Membership.Role.TEACHER, Membership.Role.REVIEWER):
        raise ActionRefused(_("Choose teacher or reviewer."))
    _refuse_if_archived(classroom)
    if not person.is_active:
        raise ActionRefused(_("%(person)s's account is deactivated.") % {"person": person})
    if Membership.objects.filter(user=person, role=Membership.Role.STUDENT).exists():
        raise ActionRefused(
            _("%(person)s has a student account. Give them a separate staff account to teach.") % {"person": person}
        )
    with transaction.atomic():
        membership, created = Membership.objects.get_or_create(
            classroom=classroom, user=person, defaults={"role": role}
        )
        if not created and membership.role == role:
            raise ActionRefused(_("%(person)s is already in this class.") % {"person": person})
        if not created:
            membership.role = role
            membership.save(update_fields=["role"])
        audit_record(
            actor=actor,
            action="class.staff_assign",
            school=school,
            target=_person_label(person),
            subject=person,
            details={"classroom": classroom.id, "role": role},
        )
        _recheck_access_after_commit([person.id])
    return membership


def student_enrol(*, actor: User, classroom: Classroom, person: User) -> Membership:
    school = _check_school(actor, classroom, person)
    _refuse_if_archived(classroom)
    if selectors.is_staff_member(person):
        raise ActionRefused(
            _("%(person)s has a staff account and cannot be enrolled as a student.") % {"person": person}
        )
    with transaction.atomic():
        membership, created = Membership.objects.get_or_create(
            classroom=classroom, user=person, defaults={"role": Membership.Role.STUDENT}
        )
        if not created:
            raise ActionRefused(_("%(person)s is already in this class.") % {"person": person})
        audit_record(
            actor=actor,
            action="class.student_enrol",
            school=school,
            target=_person_label(person),
            subject=person,
            details={"classroom": classroom.id},
        )
    return membership


def member_remove(*, actor: User, classroom: Classroom, person: User) -> None:
    """Take a teacher, reviewer or student out of the class; their conversations are kept."""
    school = _check_school(actor, classroom, person)
    with transaction.atomic():
        membership = Membership.objects.filter(classroom=classroom, user=person).first()
        if membership is None:
            raise ActionRefused(_("%(person)s is not in this class.") % {"person": person})
        membership.delete()
        audit_record(
            actor=actor,
            action="class.member_remove",
            school=school,
            target=_person_label(person),
            subject=person,
            details={"classroom": classroom.id, "role": membership.role},
        )
        _recheck_access_after_commit([person.id])


def student_move(*, actor: User, person: User, from_classroom: Classroom, to_classroom: Classroom) -> Membership:
    school = _check_school(actor, person, from_classroom, to_classroom)
    if from_classroom.id == to_classroom.id:
        raise ActionRefused(_("Choose another class."))
    _refuse_if_archived(to_classroom)
    with transaction.atomic():
        removed = Membership.objects.filter(
            classroom=from_classroom, user=person, role=Membership.Role.STUDENT
        ).delete()[0]
        if not removed:
            raise ActionRefused(_("%(person)s is not a student of this class.") % {"person": person})
        membership, _created = Membership.objects.get_or_create(
            classroom=to_classroom, user=person, defaults={"role": Membership.Role.STUDENT}
        )
        if membership.role != Membership.Role.STUDENT:
            raise ActionRefused(_("%(person)s is staff in that class.") % {"person": person})
        audit_record(
            actor=actor,
            action="class.student_move",
            school=school,
            target=_person_label(person),
            subject=person,
            details={"from": from_classroom.id, "to": to_classroom.id},
        )
        _recheck_access_after_commit([person.id])
    return membership


# Accounts


def _refuse_admin_accounts(actor: User, person: User) -> None:
    if person.id == actor.id:
        raise ActionRefused(_("You cannot do this to your own account."))
    if person.is_school_admin or person.is_superuser:
        raise ActionRefused(_("Only the platform operator can change a school admin's account."))


def person_deactivate(*, actor: User, person: User) -> User:
    """The person can no longer sign in; their open pages and sockets lose access at once."""
    school = _check_school(actor, person)
    _refuse_admin_accounts(actor, person)
    with transaction.atomic():
        if not User.objects.filter(pk=person.pk, is_active=True).update(is_active=False):
            raise ActionRefused(_("This account is already deactivated."))
        person.is_active = False
        audit_record(
            actor=actor, action="person.deactivate", school=school, target=_person_label(person), subject=person
        )
        _recheck_access_after_commit([person.id])
    return person


def person_reactivate(*, actor: User, person: User) -> User:
    school = _check_school(actor, person)
    _refuse_admin_accounts(actor, person)
    with transaction.atomic():
        if not User.objects.filter(pk=person.pk, is_active=False).update(is_active=True):
            raise ActionRefused(_("This account is already active."))
        person.is_active = True
        audit_record(
            actor=actor, action="person.reactivate", school=school, target=_person_label(person), subject=person
        )
    return person


def _card(person: User, classroom_name: str, password: str) -> LoginCard:
    cell = roster.neutralise_cell  # no text on the sheet may start like a spreadsheet formula
    return LoginCard(
        classroom=cell(classroom_name), name=cell(str(person)), username=person.username, password=password
    )


def password_reset(*, actor: User, person: User) -> LoginCard:
    """A new password, returned once; signed-in sessions of the person end."""
    school = _check_school(actor, person)
    _refuse_admin_accounts(actor, person)
    password = password_new()
    with transaction.atomic():
        person.set_password(password)
        person.save(update_fields=["password"])
        audit_record(
            actor=actor, action="person.password_reset", school=school, target=_person_label(person), subject=person
        )
        _recheck_access_after_commit([person.id])
    first_class = selectors.memberships_of(person).first()
    return _card(person, first_class.classroom.name if first_class else school.name, password)


def class_passwords_reset(*, actor: User, classroom: Classroom) -> list[LoginCard]:
    """New passwords for every student of the class (for a new sheet of login cards)."""
    school = _check_school(actor, classroom)
    cards = []
    with transaction.atomic():
        students = list(selectors.students_of(classroom).filter(school=school).select_for_update())
        if not students:
            raise ActionRefused(_("This class has no students."))
        for person in students:
            password = password_new()
            person.set_password(password)
            person.save(update_fields=["password"])
            cards.append(_card(person, classroom.name, password))
        audit_record(
            actor=actor,
            action="class.passwords_reset",
            school=school,
            target=classroom.name,
            details={"classroom": classroom.id, "students": len(students)},
        )
        _recheck_access_after_commit([p.id for p in students])
    return cards


def _give_student_number(person: User) -> None:
    """A number for a student the school's roster does not know (an account made here,
    a sign-up with a join code), so that the roster export can be imported again and
    finds them. Unique, and unlike a school's own numbers."""
    person.student_number = f"tutor-{person.pk}"
    person.save(update_fields=["student_number"])


def student_numbers_fill(*, school: School) -> int:
    """Give a number to each student of the school who has none (accounts made before
    numbers were given, students who joined with an account of their own). Returns how
    many got one. Called before the roster export, which must re-import."""
    missing = User.objects.filter(
        school=school, student_number="", memberships__role=Membership.Role.STUDENT
    ).distinct()
    count = 0
    with transaction.atomic():
        for person in missing:  # the same number whoever gives it: two exports at once agree
            _give_student_number(person)
            count += 1
    return count


def _clean_person_name(value: str, label: str) -> str:
    value = " ".join((value or "").split())
    if not value:
        raise ActionRefused(_("The %(field)s is missing.") % {"field": label})
    if roster.looks_like_formula(value):
        raise ActionRefused(_("A name may not start with =, +, - or @ (“%(name)s”).") % {"name": value[:40]})
    if len(value) > 150:
        raise ActionRefused(_("The %(field)s is too long (at most 150 characters).") % {"field": label})
    return value


def students_create(*, actor: User, classroom: Classroom, names: list[tuple[str, str]]) -> list[LoginCard]:
    """Accounts for students without e-mail: generated usernames and passwords, enrolled in the class.

    All or nothing. The passwords are returned once, for the login cards; only their
    hashes are stored.
    """
    school = _check_school(actor, classroom)
    _refuse_if_archived(classroom)
    if not names:
        raise ActionRefused(_("Write at least one student's name."))
    if len(names) > BULK_ACCOUNTS_MAX:
        raise ActionRefused(_("At most %(max)d students at a time.") % {"max": BULK_ACCOUNTS_MAX})
    cleaned = [
        (_clean_person_name(first, _("first name")), _clean_person_name(last, _("last name"))) for first, last in names
    ]
    cards = []
    with transaction.atomic():
        for first_name, last_name in cleaned:
            password = password_new()
            person = User(
                username=username_new(first_name, last_name), first_name=first_name, last_name=last_name, school=school
            )
            person.set_password(password)
            person.save()
            _give_student_number(person)
            Membership.objects.create(classroom=classroom, user=person, role=Membership.Role.STUDENT)
            cards.append(_card(person, classroom.name, password))
        audit_record(
            actor=actor,
            action="class.accounts_create",
            school=school,
            target=classroom.name,
            details={"classroom": classroom.id, "students": len(cards)},
        )
    return cards


def staff_account_create(
    *, actor: User, school: School, username: str, first_name: str, last_name: str, email: str = ""
) -> LoginCard:
    """An account for a teacher of the school; assign them to classes afterwards."""
    _check_school(actor, school)
    first_name = _clean_person_name(first_name, _("first name"))
    last_name = _clean_person_name(last_name, _("last name"))
    username = (username or "").strip()
    if User.objects.filter(username__iexact=username).exists():
        raise ActionRefused(_("The username “%(username)s” is taken.") % {"username": username})
    password = password_new()
    try:
        with transaction.atomic():
            person = User(username=username, first_name=first_name, last_name=last_name, email=email, school=school)
            person.set_password(password)
            person.save()
            audit_record(
                actor=actor, action="person.create", school=school, target=_person_label(person), subject=person
            )
    except IntegrityError:
        raise ActionRefused(_("The username “%(username)s” is taken.") % {"username": username}) from None
    return _card(person, school.name, password)


def school_retention_set(*, actor: User, school: School, retention_days: int) -> School:
    _check_school(actor, school)
    if not 1 <= retention_days <= 3650:
        raise ActionRefused(_("Choose between 1 and 3650 days."))
    with transaction.atomic():
        old = school.retention_days
        school.retention_days = retention_days
        school.save(update_fields=["retention_days"])
        audit_record(
            actor=actor,
            action="school.retention",
            school=school,
            target=school.name,
            details={"from": old, "to": retention_days},
        )
    return school


def school_training_consent_set(*, actor: User, school: School, consent: bool) -> School:
    """Turn on or off the use of the school's review decisions to train its model."""
    _check_school(actor, school)
    with transaction.atomic():
        changed = School.objects.filter(pk=school.pk).exclude(training_consent=consent).update(training_consent=consent)
        school.training_consent = consent
        if changed:
            audit_record(
                actor=actor,
                action="school.training_on" if consent else "school.training_off",
                school=school,
                target=school.name,
            )
    return school


# Safeguarding: designated staff, the supportive message, the alert delay, opening the
# tutor to students (classrooms.selectors.student_chat_blockers says when it may open).

ALERT_DELAY_MINUTES = (1, 60)
SUPPORTIVE_MESSAGE_MAX_CHARS = 2000


def safeguarding_contact_add(
    *, actor: User | None, school: School, person: User, title: str = ""
) -> SafeguardingContact:
    """Designate a member of staff to receive urgent alerts; they go to the end of the list."""
    if actor is not None:
        _check_school(actor, school, person)
    elif person.school_id != school.id:
        raise ActionRefused(_("This belongs to another school."))
    if not selectors.may_be_safeguarding_contact(person):
        raise ActionRefused(
            _("%(person)s has a student account or is deactivated; designate a member of staff.") % {"person": person}
        )
    title = " ".join((title or "").split())[:100]
    with transaction.atomic():
        last = SafeguardingContact.objects.filter(school=school).order_by("-position").first()
        contact, created = SafeguardingContact.objects.get_or_create(
            school=school, person=person, defaults={"title": title, "position": (last.position + 1) if last else 0}
        )
        if not created:
            raise ActionRefused(_("%(person)s is already on the list.") % {"person": person})
        audit_record(
            actor=actor,
            action="safeguarding.contact_add",
            school=school,
            target=_person_label(person),
            subject=person,
            details={"title": title},
        )
    return contact


def safeguarding_contact_remove(*, actor: User, contact: SafeguardingContact) -> None:
    school = _check_school(actor, contact)
    with transaction.atomic():
        if not SafeguardingContact.objects.filter(pk=contact.pk).delete()[0]:
            raise ActionRefused(_("This person is not on the list any more."))
        audit_record(
            actor=actor,
            action="safeguarding.contact_remove",
            school=school,
            target=_person_label(contact.person),
            subject=contact.person,
        )


def safeguarding_contact_move(*, actor: User, contact: SafeguardingContact, up: bool) -> None:
    """Move a person one place up (alerted sooner) or down the list."""
    school = _check_school(actor, contact)
    with transaction.atomic():
        ordered = list(SafeguardingContact.objects.select_for_update().filter(school=school).order_by("position", "id"))
        index = next((i for i, c in enumerate(ordered) if c.pk == contact.pk), None)
        if index is None:
            raise ActionRefused(_("This person is not on the list any more."))
        other = index - 1 if up else index + 1
        if not 0 <= other < len(ordered):
            return
        ordered[index], ordered[other] = ordered[other], ordered[index]
        for position, item in enumerate(ordered):
            if item.position != position:
                SafeguardingContact.objects.filter(pk=item.pk).update(position=position)
        audit_record(
            actor=actor,
            action="safeguarding.contact_move",
            school=school,
            target=_person_label(contact.person),
            subject=contact.person,
            details={"order": [c.person_id for c in ordered]},
        )


def supportive_message_approve(*, actor: User | None, school: School, language: str, text: str) -> SupportiveMessage:
    """Save and approve the message a student reads at once after an urgent message.

    It reaches the student without a teacher's review: it must be the admin's own words,
    approved here (the audit log keeps each approved version).
    """
    if actor is not None:
        _check_school(actor, school)
    if language not in dict(settings.LANGUAGES):
        raise ActionRefused(_("Choose one of the site's languages."))
    text = (text or "").replace("\x00", "").replace("\r\n", "\n").strip()
    if not text:
        raise ActionRefused(_("The supportive message cannot be empty."))
    if len(text) > SUPPORTIVE_MESSAGE_MAX_CHARS:
        raise ActionRefused(
            _("The supportive message is too long (at most %(max)d characters).")
            % {"max": SUPPORTIVE_MESSAGE_MAX_CHARS}
        )
    with transaction.atomic():
        message, _created = SupportiveMessage.objects.update_or_create(
            school=school,
            language=language,
            defaults={"text": text, "approved_by": actor, "approved_at": timezone.now()},
        )
        audit_record(
            actor=actor,
            action="safeguarding.message_approve",
            school=school,
            target=dict(settings.LANGUAGES)[language],
            details={"language": language, "text": text},
        )
    return message


def alert_delay_set(*, actor: User, school: School, minutes: int) -> School:
    _check_school(actor, school)
    low, high = ALERT_DELAY_MINUTES
    if not low <= minutes <= high:
        raise ActionRefused(_("Choose between %(low)d and %(high)d minutes.") % {"low": low, "high": high})
    with transaction.atomic():
        old = school.alert_ack_minutes
        School.objects.filter(pk=school.pk).update(alert_ack_minutes=minutes)
        school.alert_ack_minutes = minutes
        audit_record(
            actor=actor,
            action="safeguarding.delay",
            school=school,
            target=school.name,
            details={"from": old, "to": minutes},
        )
    return school


def student_chat_set_open(*, actor: User | None, school: School, open: bool) -> School:
    """Open the tutor to the school's students, or close it. Opening is refused, with
    the reasons, while classrooms.selectors.student_chat_blockers has any."""
    if actor is not None:
        _check_school(actor, school)
    with transaction.atomic():
        if open:
            blockers = selectors.student_chat_blockers(school)
            if blockers:
                raise ActionRefused(" ".join([_("Students cannot chat yet."), *blockers]))
        if school.student_chat_open == open and School.objects.filter(pk=school.pk, student_chat_open=open).exists():
            return school
        School.objects.filter(pk=school.pk).update(student_chat_open=open)
        school.student_chat_open = open
        audit_record(
            actor=actor,
            action="safeguarding.chat_open" if open else "safeguarding.chat_close",
            school=school,
            target=school.name,
        )
    return school


def safeguarding_defaults_approve(*, actor: User | None, school: School, contacts: list[User]) -> School:
    """Set up a school in one step with the default supportive messages, these contacts,
    and the tutor open to students: for the demo school, tests and benchmarks."""
    with transaction.atomic():
        for person in contacts:
            if not SafeguardingContact.objects.filter(school=school, person=person).exists():
                safeguarding_contact_add(actor=actor, school=school, person=person)
        for language, text in DEFAULT_SUPPORTIVE_MESSAGES.items():
            if language in dict(settings.LANGUAGES):
                supportive_message_approve(actor=actor, school=school, language=language, text=text)
        return student_chat_set_open(actor=actor, school=school, open=True)


def school_models_set(*, actor: User, school: School, default_model: str, allowed_models: list[str]) -> School:
    """The school's default model, and the others its teachers may choose for a class.

    A class whose model is no longer allowed drafts with the school's default from its
    next question on (classrooms.selectors.classroom_model).
    """
    _check_school(actor, school)
    declared = [m["key"] for m in selectors.declared_models()]
    unknown = [key for key in [default_model, *allowed_models] if key not in declared]
    if unknown:
        raise ActionRefused(_("No model “%(key)s” is set up on this platform.") % {"key": unknown[0]})
    wanted = set(allowed_models) | {default_model}
    allowed = [key for key in declared if key in wanted and key != default_model]
    with transaction.atomic():
        old = {"default": school.default_model, "allowed": school.allowed_models}
        school.default_model = default_model
        school.allowed_models = allowed
        school.save(update_fields=["default_model", "allowed_models"])
        if old != {"default": default_model, "allowed": allowed}:
            audit_record(
                actor=actor,
                action="school.models",
                school=school,
                target=school.name,
                details={"from": old, "to": {"default": default_model, "allowed": allowed}},
            )
    return school


# A/B: a model on trial for a share of drafts, promoted or rolled back by the admin.


def _models_change(actor: User, school: School, action: str, **fields: object) -> School:
    with transaction.atomic():
        old = {name: getattr(school, name) for name in fields}
        for name, value in fields.items():
            setattr(school, name, value)
        school.save(update_fields=list(fields))
        audit_record(actor=actor, action=action, school=school, target=school.name, details={"from": old, "to": fields})
    return school


def school_model_trial_set(*, actor: User, school: School, model_key: str, share: int) -> School:
    """Draft `share` percent of new replies (of classes on the default) with `model_key`."""
    _check_school(actor, school)
    if model_key not in [m["key"] for m in selectors.declared_models()]:
        raise ActionRefused(_("No model “%(key)s” is set up on this platform.") % {"key": model_key})
    if model_key == selectors.school_default_model(school):
        raise ActionRefused(_("This model already drafts the school's replies: choose another to try."))
    if not 1 <= share <= 100:
        raise ActionRefused(_("Choose a share between 1 and 100%."))
    return _models_change(actor, school, "school.model_trial", trial_model=model_key, trial_share=share)


def school_model_trial_stop(*, actor: User, school: School) -> School:
    """Every new draft goes back to the school's default model (one click)."""
    _check_school(actor, school)
    return _models_change(actor, school, "school.model_trial_stop", trial_model="", trial_share=0)


def school_model_promote(*, actor: User, school: School) -> School:
    """The model on trial becomes the school's default; the old default is remembered."""
    _check_school(actor, school)
    if not school.trial_model:
        raise ActionRefused(_("No model is on trial."))
    return _models_change(
        actor,
        school,
        "school.model_promote",
        previous_default_model=selectors.school_default_model(school),
        default_model=school.trial_model,
        trial_model="",
        trial_share=0,
    )


def school_model_rollback(*, actor: User, school: School) -> School:
    """Back to the default model from before the last promotion (one click)."""
    _check_school(actor, school)
    if not school.previous_default_model:
        raise ActionRefused(_("There is no earlier default model to go back to."))
    return _models_change(
        actor,
        school,
        "school.model_rollback",
        default_model=school.previous_default_model,
        previous_default_model="",
        trial_model="",
        trial_share=0,
    )


# Roster import


def roster_import(*, actor: User, school: School, data: bytes) -> tuple[dict, list[LoginCard]]:
    """Apply a roster file: all of it, or nothing if any row has an error.

    Reads the file again inside the transaction (the database may have changed since
    the preview). Returns the counts and the login cards of the new students.
    """
    _check_school(actor, school)
    try:
        with transaction.atomic():
            preview = roster.roster_read(school=school, data=data)
            if not preview.ok:
                raise RosterRefused(
                    _("Nothing was imported: fix the errors below, then upload the file again."), preview
                )
            cards: list[LoginCard] = []
            people: dict[str, User] = {}
            counts = {"created": 0, "updated": 0, "enrolled": 0}
            for row in preview.rows:
                person = people.get(row.student_number) or row.person
                if person is None:
                    password = password_new()
                    person = User(
                        username=username_new(row.first_name, row.last_name),
                        school=school,
                        first_name=row.first_name,
                        last_name=row.last_name,
                        email=row.email,
                        student_number=row.student_number,
                    )
                    person.set_password(password)
                    person.save()
                    cards.append(_card(person, row.classroom.name, password))
                    counts["created"] += 1
                elif row.changes:
                    person.first_name, person.last_name = row.first_name, row.last_name
                    person.email = row.email or person.email
                    person.save(update_fields=["first_name", "last_name", "email"])
                    counts["updated"] += 1
                people[row.student_number] = person
                if row.enrols:
                    Membership.objects.create(classroom=row.classroom, user=person, role=Membership.Role.STUDENT)
                    counts["enrolled"] += 1
            if any(counts.values()):
                audit_record(
                    actor=actor,
                    action="roster.import",
                    school=school,
                    target=_("%(n)d rows") % {"n": len(preview.rows)},
                    details=counts,
                )
    except IntegrityError:
        raise ActionRefused(
            _("Someone changed these students at the same time. Nothing was imported; try again.")
        ) from None
    return counts, cards


# Teachers: the class's tutor and its join code


TUTOR_SETTINGS_FIELDS = ("subject", "level", "reply_language", "tutor_instructions", "max_reply_words")


def tutor_settings_update(*, actor: User, classroom: Classroom, **values) -> Classroom:
    """Save the class's tutor settings; the next draft uses them (tutor.prompts reads them)."""
    unknown = set(values) - set(TUTOR_SETTINGS_FIELDS)
    if unknown:
        raise ValueError(f"not tutor settings: {sorted(unknown)}")
    return _classroom_fields_save(actor=actor, classroom=classroom, fields=values, action="class.tutor_settings")


def _classroom_fields_save(*, actor: User, classroom: Classroom, fields: dict, action: str) -> Classroom:
    """Save the fields that changed, with one audit line naming them; nothing when none did."""
    with transaction.atomic():
        changed = [name for name, value in fields.items() if getattr(classroom, name) != value]
        if not changed:
            return classroom
        for name in changed:
            setattr(classroom, name, fields[name])
        classroom.save(update_fields=changed)
        if "opening_hours" in changed:
            _after_commit_availability_changed(classroom)
        audit_record(
            actor=actor,
            action=action,
            school=classroom.school,
            target=classroom.name,
            details={"classroom": classroom.id, "changed": changed},
        )
    return classroom


def classroom_model_choose(*, actor: User, classroom: Classroom, model_key: str) -> Classroom:
    """A teacher chooses the model that drafts the class's replies, among those the school
    allows ("" = the school's default). Drafts already written keep their model."""
    if model_key and model_key not in selectors.school_allowed_models(classroom.school):
        raise ActionRefused(
            _(
                "Your school does not allow the model “%(model)s” for its classes. Choose one of the models "
                "listed, or ask your school admin."
            )
            % {"model": selectors.model_label(model_key) or model_key}
        )
    if classroom.model_key == model_key:
        return classroom
    with transaction.atomic():
        old = classroom.model_key
        classroom.model_key = model_key
        classroom.save(update_fields=["model_key"])
        audit_record(
            actor=actor,
            action="class.model",
            school=classroom.school,
            target=classroom.name,
            details={"classroom": classroom.id, "from": old, "to": model_key},
        )
    return classroom


def join_code_rotate(*, actor: User, classroom: Classroom) -> Classroom:
    """A new code; the old one stops working at once."""
    with transaction.atomic():
        classroom.join_code = _unused_join_code()
        classroom.join_code_enabled = True
        classroom.join_code_expires_at = _join_code_expiry()
        classroom.save(update_fields=["join_code", "join_code_enabled", "join_code_expires_at"])
        audit_record(
            actor=actor,
            action="class.join_code_rotate",
            school=classroom.school,
            target=classroom.name,
            details={"classroom": classroom.id},
        )
    return classroom


def classroom_limits_set(
    *,
    actor: User,
    classroom: Classroom,
    per_hour: int | None,
    per_day: int | None,
    unanswered: int | None,
    opening_hours: list[dict],
) -> Classroom:
    """A teacher's quotas per student (None: the school's ceiling) and weekly opening hours
    (classrooms.schedule's periods). Refuses a quota under 1 or above the school's ceiling."""
    ceilings = selectors.school_ceilings(classroom.school)
    values = {"per_hour": per_hour, "per_day": per_day, "unanswered": unanswered}
    for key, value in values.items():
        if value is not None and not 1 <= value <= ceilings[key]:
            raise ActionRefused(_("Choose a quota between 1 and %(max)d.") % {"max": ceilings[key]})
    fields = {
        "questions_per_hour": per_hour,
        "questions_per_day": per_day,
        "max_unanswered": unanswered,
        "opening_hours": opening_hours,
    }
    return _classroom_fields_save(actor=actor, classroom=classroom, fields=fields, action="class.limits")


def _after_commit_availability_changed(classroom: Classroom) -> None:
    classroom_id = classroom.id
    transaction.on_commit(lambda: signals.class_availability_changed.send(sender=Classroom, classroom_id=classroom_id))


def classroom_pause_set(*, actor: User, classroom: Classroom, paused: bool) -> bool:
    """Pause the class's tutor (students cannot ask; what they asked is still reviewed) or
    open it again. A conditional update: False when it already was so (nothing audited)."""
    with transaction.atomic():
        changed = Classroom.objects.filter(pk=classroom.pk).exclude(paused=paused).update(paused=paused)
        classroom.paused = paused
        if changed:
            _after_commit_availability_changed(classroom)
            audit_record(
                actor=actor,
                action="class.paused" if paused else "class.resumed",
                school=classroom.school,
                target=classroom.name,
                details={"classroom": classroom.id},
            )
    return bool(changed)


def school_limits_set(
    *,
    actor: User,
    school: School,
    per_hour: int | None,
    per_day: int | None,
    unanswered: int | None,
    time_zone: str,
) -> School:
    """The school admin's ceilings on classes' quotas, and the school's time zone. A class
    whose quota is above a lowered ceiling is held to the ceiling (selectors.classroom_quotas)."""
    _check_school(actor, school)
    top = settings.TUTOR_QUOTA_HARD_MAX
    values = {"per_hour": per_hour, "per_day": per_day, "unanswered": unanswered}
    for key, value in values.items():
        if value is not None and not 1 <= value <= top[key]:  # None: the platform's default
            raise ActionRefused(_("Choose a ceiling between 1 and %(max)d.") % {"max": top[key]})
    fields = {
        "ceiling_per_hour": per_hour,
        "ceiling_per_day": per_day,
        "ceiling_unanswered": unanswered,
        "time_zone": time_zone,
    }
    with transaction.atomic():
        changed = [name for name, value in fields.items() if getattr(school, name) != value]
        if not changed:
            return school
        for name in changed:
            setattr(school, name, fields[name])
        school.save(update_fields=changed)
        audit_record(
            actor=actor, action="school.limits", school=school, target=school.name, details={"changed": changed}
        )
    return school


def join_code_set_enabled(*, actor: User, classroom: Classroom, enabled: bool) -> Classroom:
    with transaction.atomic():
        fields = ["join_code_enabled"]
        classroom.join_code_enabled = enabled
        if enabled and classroom.join_code_expires_at and classroom.join_code_expires_at <= timezone.now():
            classroom.join_code_expires_at = _join_code_expiry()
            fields.append("join_code_expires_at")
        classroom.save(update_fields=fields)
        audit_record(
            actor=actor,
            action="class.join_code_on" if enabled else "class.join_code_off",
            school=classroom.school,
            target=classroom.name,
            details={"classroom": classroom.id},
        )
    return classroom


# Students: joining with a code, signing up


def _throttle_key(key: str) -> str:
    return f"classrooms.join-refused.{key}"


def _note_refusal(key: str) -> None:
    """Count one wrong code, in the cache every web process shares (Redis)."""
    cache_key = _throttle_key(key)
    try:
        if not cache.add(cache_key, 1, JOIN_REFUSALS_WINDOW):
            try:
                cache.incr(cache_key)
            except ValueError:
                cache.set(cache_key, 1, JOIN_REFUSALS_WINDOW)
    except Exception as exc:  # Redis restarting: the count resumes once it is back
        log.warning("join-code refusal not counted: %s", type(exc).__name__)


def _refusals(key: str) -> int:
    try:
        return cache.get(_throttle_key(key)) or 0
    except Exception as exc:  # Redis restarting: a moment without the limit, not an error page
        log.warning("join-code refusals not read: %s", type(exc).__name__)
        return 0


def _classroom_for_code(code: str, *, throttle_key: str, limit: int = JOIN_REFUSALS_LIMIT) -> Classroom:
    """The class a join code opens, or a refusal that says why (counted against guessing)."""
    if _refusals(throttle_key) >= limit:
        raise JoinRefused(_("Too many wrong codes. Wait a quarter of an hour, then try again."))
    classroom = selectors.classroom_by_join_code(code)
    if classroom is None or classroom.archived:
        _note_refusal(throttle_key)
        raise JoinRefused(_("No class has this join code. Check it with your teacher."))
    if not classroom.join_code_enabled:
        _note_refusal(throttle_key)
        raise JoinRefused(_("This class is not taking new students with a code right now. Ask your teacher."))
    if classroom.join_code_expires_at and classroom.join_code_expires_at <= timezone.now():
        _note_refusal(throttle_key)
        raise JoinRefused(_("This join code has expired. Ask your teacher for the new one."))
    return classroom


def class_join(*, person: User, code: str, throttle_key: str) -> Classroom:
    """A signed-in student joins a class by its code."""
    classroom = _classroom_for_code(code, throttle_key=throttle_key)
    if person.school_id is not None and person.school_id != classroom.school_id:
        raise JoinRefused(_("This code is for a class of another school."))
    if selectors.is_staff_member(person):
        raise JoinRefused(_("Staff accounts cannot join a class as students."))
    with transaction.atomic():
        if person.school_id is None:
            User.objects.filter(pk=person.pk, school=None).update(school=classroom.school)
            person.school = classroom.school
        _membership, created = Membership.objects.get_or_create(
            classroom=classroom, user=person, defaults={"role": Membership.Role.STUDENT}
        )
        if not created:
            raise JoinRefused(_("You are already in %(classroom)s.") % {"classroom": classroom.name})
        audit_record(
            actor=person,
            action="class.join",
            school=classroom.school,
            target=_person_label(person),
            subject=person,
            details={"classroom": classroom.id},
        )
    return classroom


def student_sign_up(
    *, code: str, username: str, first_name: str, last_name: str, password: str, throttle_key: str
) -> tuple[User, Classroom]:
    """A new student account in the school and class that the join code names.

    The form has checked the username and the password's strength; the code is
    checked here.
    """
    classroom = _classroom_for_code(code, throttle_key=throttle_key, limit=SIGN_UP_REFUSALS_LIMIT)
    first_name = _clean_person_name(first_name, _("first name"))
    last_name = _clean_person_name(last_name, _("last name"))
    try:
        with transaction.atomic():
            person = User(username=username, first_name=first_name, last_name=last_name, school=classroom.school)
            person.set_password(password)
            person.save()
            _give_student_number(person)
            Membership.objects.create(classroom=classroom, user=person, role=Membership.Role.STUDENT)
            audit_record(
                actor=person,
                action="person.sign_up",
                school=classroom.school,
                target=_person_label(person),
                subject=person,
                details={"classroom": classroom.id},
            )
    except IntegrityError:
        raise ActionRefused(_("The username “%(username)s” is taken.") % {"username": username}) from None
    return person, classroom


# Privacy: a student's data, and deleting it


def _refuse_unless_student(actor: User, person: User) -> None:
    _refuse_admin_accounts(actor, person)
    if selectors.is_staff_member(person):
        raise ActionRefused(_("This is a staff account; only student accounts can be exported or deleted here."))


def student_export(*, actor: User, student: User) -> dict:
    """Everything the platform holds about one student, as they could see it.

    The apps above add their sections (classrooms.signals.student_data_exported): tutor
    adds the conversations, with only what the student could read, never a draft.
    Recorded in the audit log.
    """
    school = _check_school(actor, student)
    _refuse_unless_student(actor, student)
    cell = roster.neutralise_cell
    data = {
        "exported_at": timezone.now().isoformat(),
        "school": cell(school.name),
        "account": {
            "username": cell(student.username),
            "first_name": cell(student.first_name),
            "last_name": cell(student.last_name),
            "email": cell(student.email),
            "student_number": cell(student.student_number),
            "language": student.language,
            "active": student.is_active,
            "joined": student.date_joined.isoformat(),
            "last_sign_in": student.last_login.isoformat() if student.last_login else None,
        },
        "classes": [
            {"class": cell(m.classroom.name), "role": m.role, "since": m.joined_at.isoformat()}
            for m in selectors.memberships_of(student)
        ],
    }
    for _receiver, sections in signals.student_data_exported.send(sender=User, student=student):
        data.update(sections or {})
    with transaction.atomic():
        audit_record(actor=actor, action="person.export", school=school, target=_person_label(student), subject=student)
    return data


def _sessions_of(person: User) -> list[str]:
    keys = []
    for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator():
        if session.get_decoded().get("_auth_user_id") == str(person.pk):
            keys.append(session.session_key)
    return keys


def student_delete(*, actor: User, student: User) -> None:
    """Delete a student and everything they wrote: account, class places, conversations
    (their questions and the replies to them), sign-in records and sessions. The audit
    log keeps that it happened, without their name.
    """
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog

    school = _check_school(actor, student)
    _refuse_unless_student(actor, student)
    student_id, username = student.pk, student.username
    gone = _("deleted account #%(id)d") % {"id": student_id}
    with transaction.atomic():
        AuditEntry.objects.filter(subject=student).update(target=gone, subject=None)
        AuditEntry.objects.filter(actor=student).update(actor_name=gone, actor=None)
        Session.objects.filter(session_key__in=_sessions_of(student)).delete()
        for model in (AccessAttempt, AccessFailureLog, AccessLog):
            model.objects.filter(username=username).delete()
        LogEntry.objects.filter(
            content_type=ContentType.objects.get_for_model(User), object_id=str(student_id)
        ).delete()
        student.delete()  # cascades: memberships, and what the apps above keep of them (conversations)
        audit_record(actor=actor, action="person.delete", school=school, target=gone)
        _recheck_access_after_commit([student_id])
