"""Writes for sign-in services and learning platforms.

An account is found by the service's stable subject (`ExternalIdentity`, or django-lti's
`LtiUser` for platforms), never by e-mail alone. It is created only where the school
allows it, and a new account whose e-mail another account already uses is refused rather
than merged. Roles come from the school's own rule: a claim the school did not configure
makes nobody a teacher, and a student of a class is never turned into a teacher by one.

Class memberships change only through `classrooms.services` (enrol, assign, remove), which
also closes the sockets of people who lose access.
"""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from classrooms import services as classroom_services
from classrooms.identity import claims as claim_rules
from classrooms.identity.errors import SignInRefused
from classrooms.identity.lti import course_role as lti_course_role
from classrooms.identity.models import (
    KEY_PATTERN,
    CourseLink,
    ExternalIdentity,
    IdentityProvider,
    LtiPlatform,
    PlatformInvitation,
    SchoolSignIn,
    SignInProblem,
)
from classrooms.models import Classroom, Membership, School, User

log = logging.getLogger("classrooms.identity")

PROBLEMS_KEPT_PER_SCHOOL = 200
INVITATION_VALID_HOURS = 24


# What went wrong, for the school admin


def problem_record(
    *,
    refusal: SignInRefused,
    school: School | None,
    provider: IdentityProvider | None = None,
    platform: LtiPlatform | None = None,
) -> None:
    """Log a refusal (reason code, no personal data) and keep it for the school's sign-in page."""
    source = provider.key if provider else (f"platform {platform.id}" if platform else "-")
    log.warning("sign-in refused: %s (%s) via %s", refusal.reason, refusal.detail, source)
    if school is None:
        return
    SignInProblem.objects.create(
        school=school, provider=provider, platform=platform, reason=refusal.reason, detail=refusal.detail[:500]
    )
    stale = SignInProblem.objects.filter(school=school).order_by("-at", "-id")[PROBLEMS_KEPT_PER_SCHOOL:]
    SignInProblem.objects.filter(pk__in=list(stale.values_list("pk", flat=True))).delete()


# Signing in with a school's OpenID Connect or CAS service


def role_from_claims(sign_in: SchoolSignIn, claims: dict) -> str:
    """Teacher only when the school's own rule says so; everyone else is a student."""
    if claim_rules.claim_matches(claims, sign_in.teacher_claim, sign_in.teacher_values):
        return ExternalIdentity.Role.TEACHER
    return ExternalIdentity.Role.STUDENT


def _refuse_unless_admitted(sign_in: SchoolSignIn, claims: dict) -> None:
    if sign_in.admit_claim and not claim_rules.claim_matches(claims, sign_in.admit_claim, sign_in.admit_values):
        raise SignInRefused(
            "not_admitted",
            _("This %(service)s account is not one of %(school)s's.")
            % {"service": sign_in.provider.name, "school": sign_in.school.name},
            detail=_("Someone whose “%(claim)s” is not among the admitted values tried to sign in.")
            % {"claim": sign_in.admit_claim},
        )


def _is_student_somewhere(user: User) -> bool:
    return Membership.objects.filter(user=user, role=Membership.Role.STUDENT).exists()


def _account_by_student_number(sign_in: SchoolSignIn, claims: dict) -> User | None:
    """The school's imported account with the student number the service sends, if it is
    not linked to this service yet (then it is someone else's)."""
    if not sign_in.student_number_claim:
        return None
    number = claim_rules.first_value(claims, [sign_in.student_number_claim])
    if not number:
        return None
    person = User.objects.filter(school=sign_in.school, student_number=number, is_superuser=False).first()
    if person is None or person.external_identities.filter(provider=sign_in.provider).exists():
        return None
    return person


def _refuse_if_email_taken(email: str, service: str) -> None:
    if email and User.objects.filter(email__iexact=email).exists():
        raise SignInRefused(
            "email_taken",
            _(
                "An account with this e-mail address already exists, signed in another way. "
                "Sign in as you did before; your school admin can link %(service)s to it."
            )
            % {"service": service},
            detail=_(
                "%(service)s sent an e-mail address that another account already uses, for a person it "
                "has not linked before. No account was created and none was linked: accounts are never "
                "matched by e-mail alone."
            )
            % {"service": service},
        )


def account_create(*, school: School, claims: dict, role: str, service: str, actor_label: str) -> User:
    """A new account of the school for someone a sign-in service vouches for. No password:
    they sign in through the service. Call inside a transaction."""
    first_name, last_name = claim_rules.person_names(claims)
    if not (first_name or last_name):
        raise SignInRefused(
            "missing_claim",
            _("%(service)s did not send your name, so no account could be made. Ask your school admin.")
            % {"service": service},
            detail=_("%(service)s sent no name (given_name/family_name or similar) for a new person.")
            % {"service": service},
        )
    email = claim_rules.person_email(claims)
    _refuse_if_email_taken(email, service)
    person = User(
        username=classroom_services.username_new(first_name, last_name),
        first_name=first_name,
        last_name=last_name,
        email=email,
        school=school,
    )
    person.set_unusable_password()
    person.save()
    classroom_services.audit_record(
        actor=person,
        action="identity.account_create",
        school=school,
        target=f"{person.get_full_name()} ({person.username})",
        subject=person,
        details={"service": actor_label, "role": role},
    )
    return person


def _enabled_sign_in(school_id: int | None, provider: IdentityProvider) -> SchoolSignIn | None:
    return (
        SchoolSignIn.objects.select_related("school", "provider")
        .filter(school_id=school_id, provider=provider, enabled=True)
        .first()
    )


def sign_in_resolve(*, sign_in: SchoolSignIn, subject: str, claims: dict, link_to: User | None = None) -> User:
    """The account a sign-in service's verified answer opens, or SignInRefused.

    `sign_in` is the school's sign-in the person started from. A subject already linked
    signs in to its account (under the rules of the account's own school). Otherwise, with
    `link_to` (someone signed in who asked to link the service), the subject is linked to
    them; else to the school's account with the same student number, if the school set
    that rule; else a new account is made if the school allows it.
    """
    provider = sign_in.provider
    subject = (subject or "").strip()
    if not subject or len(subject) > 255:
        raise SignInRefused(
            "missing_claim",
            _("%(service)s did not say who you are. Nobody was signed in.") % {"service": provider.name},
            detail=_("%(service)s sent no usable subject identifier.") % {"service": provider.name},
        )
    try:
        with transaction.atomic():
            return _resolve(sign_in, provider, subject, claims, link_to)
    except IntegrityError:
        # Two first sign-ins of the same person at once: the other one linked it.
        with transaction.atomic():
            return _resolve(sign_in, provider, subject, claims, link_to)


def _resolve(sign_in: str, provider: object, subject: str, claims: dict, link_to: User | None) -> tuple:
    identity = (
        ExternalIdentity.objects.select_for_update()
        .select_related("user")
        .filter(provider=provider, subject=subject)
        .first()
    )
    if link_to is not None:
        if identity is not None and identity.user_id != link_to.id:
            raise SignInRefused(
                "linked_elsewhere",
                _("This %(service)s account is already linked to another account.") % {"service": provider.name},
                detail=_("Someone tried to link a %(service)s account that belongs to another account.")
                % {"service": provider.name},
            )
        if link_to.school_id != sign_in.school_id:
            raise SignInRefused(
                "other_school",
                _("This sign-in is for another school."),
                detail=_("An account of another school tried to link this service."),
            )
        _refuse_unless_admitted(sign_in, claims)
        user = link_to
        action = "identity.link"
    elif identity is not None:
        user = identity.user
        own = _enabled_sign_in(user.school_id, provider)
        if own is None:
            raise SignInRefused(
                "not_enabled",
                _("%(service)s is not turned on for your school.") % {"service": provider.name},
                detail=_("A linked account tried to sign in, but its school has turned this service off."),
            )
        sign_in = own
        _refuse_unless_admitted(sign_in, claims)
        action = ""
    else:
        _refuse_unless_admitted(sign_in, claims)
        user = _account_by_student_number(sign_in, claims)
        action = "identity.link"
        if user is None:
            if not sign_in.create_accounts:
                raise SignInRefused(
                    "no_account",
                    _(
                        "%(school)s has no account linked to this %(service)s account yet. "
                        "Ask your school admin to give you access."
                    )
                    % {"school": sign_in.school.name, "service": provider.name},
                    detail=_(
                        "Someone with no linked account signed in, and creating accounts is off for this service."
                    ),
                )
            user = account_create(
                school=sign_in.school,
                claims=claims,
                role=role_from_claims(sign_in, claims),
                service=provider.name,
                actor_label=provider.key,
            )
            action = ""
    if not user.is_active:
        raise SignInRefused(
            "account_disabled",
            _("This account is deactivated. Ask your school admin."),
            detail=_("A deactivated account tried to sign in."),
        )
    role = role_from_claims(sign_in, claims)
    if role == ExternalIdentity.Role.TEACHER and _is_student_somewhere(user):
        role = ExternalIdentity.Role.STUDENT  # a claim never turns a class's student into staff
    now = timezone.now()
    if identity is None:
        identity = ExternalIdentity.objects.create(
            provider=provider, subject=subject, user=user, role=role, last_sign_in_at=now
        )
    else:
        identity.role = role
        identity.last_sign_in_at = now
        identity.save(update_fields=["role", "last_sign_in_at"])
    if action:
        classroom_services.audit_record(
            actor=user,
            action=action,
            school=user.school,
            target=f"{user.get_full_name()} ({user.username})",
            subject=user,
            details={"service": provider.key},
        )
    return user


# School admins: their school's sign-in services


def _check_admin_school(actor: User, school: School) -> None:
    if not (actor.is_school_admin and actor.school_id == school.id):
        raise classroom_services.ActionRefused(_("This belongs to another school."))


def school_provider_create(
    *,
    actor: User,
    school: School,
    protocol: str,
    name: str,
    slug: str,
    issuer: str = "",
    client_id: str = "",
    scopes: str = "",
    server_url: str = "",
) -> SchoolSignIn:
    """The school's own sign-in service (its ENT's CAS, its OpenID Connect provider), turned
    on for it with no rules yet. Its key starts with the school's number, so that a school
    can never name a secret the operator set for another school or for a shared service."""
    _check_admin_school(actor, school)
    slug = (slug or "").strip().lower()
    key = f"s{school.id}-{slug}"
    if not KEY_PATTERN.match(key) or not slug:
        raise classroom_services.ActionRefused(_("The short name may hold only letters, digits and dashes."))
    name = " ".join((name or "").split())
    if not name:
        raise classroom_services.ActionRefused(_("Give the service a name for its button."))
    if protocol == IdentityProvider.Protocol.OIDC and not (issuer and client_id):
        raise classroom_services.ActionRefused(_("An OpenID Connect provider needs its issuer and client ID."))
    if protocol == IdentityProvider.Protocol.CAS and not server_url:
        raise classroom_services.ActionRefused(_("A CAS service needs the CAS server's address."))
    try:
        with transaction.atomic():
            provider = IdentityProvider.objects.create(
                key=key,
                name=name[:100],
                protocol=protocol,
                school=school,
                issuer=issuer.rstrip("/") if protocol == IdentityProvider.Protocol.OIDC else "",
                client_id=client_id if protocol == IdentityProvider.Protocol.OIDC else "",
                scopes=scopes or "openid email profile",
                server_url=server_url.rstrip("/") if protocol == IdentityProvider.Protocol.CAS else "",
            )
            sign_in = SchoolSignIn.objects.create(school=school, provider=provider)
            classroom_services.audit_record(
                actor=actor, action="identity.provider_add", school=school, target=name, details={"key": key}
            )
    except IntegrityError:
        raise classroom_services.ActionRefused(
            _("The school already has a service with the short name “%(slug)s”.") % {"slug": slug}
        ) from None
    return sign_in


def shared_provider_enable(*, actor: User, school: School, provider: IdentityProvider) -> SchoolSignIn:
    """Turn one of the installation's shared services on for the school (no rules yet)."""
    _check_admin_school(actor, school)
    if provider.school_id is not None:
        raise classroom_services.ActionRefused(_("This belongs to another school."))
    with transaction.atomic():
        sign_in, created = SchoolSignIn.objects.get_or_create(school=school, provider=provider)
        if not created:
            raise classroom_services.ActionRefused(_("This service is already on the list."))
        classroom_services.audit_record(
            actor=actor,
            action="identity.provider_add",
            school=school,
            target=provider.name,
            details={"key": provider.key},
        )
    return sign_in


SIGN_IN_RULE_FIELDS = (
    "enabled",
    "create_accounts",
    "teacher_claim",
    "teacher_values",
    "admit_claim",
    "admit_values",
    "student_number_claim",
)


def sign_in_update(*, actor: User, sign_in: SchoolSignIn, **values) -> SchoolSignIn:
    """Change a school's rules for one sign-in service (recorded in the audit log)."""
    _check_admin_school(actor, sign_in.school)
    unknown = set(values) - set(SIGN_IN_RULE_FIELDS)
    if unknown:
        raise ValueError(f"not sign-in rules: {sorted(unknown)}")
    with transaction.atomic():
        changed = [name for name, value in values.items() if getattr(sign_in, name) != value]
        if not changed:
            return sign_in
        for name in changed:
            setattr(sign_in, name, values[name])
        sign_in.save(update_fields=changed)
        classroom_services.audit_record(
            actor=actor,
            action="identity.rules",
            school=sign_in.school,
            target=sign_in.provider.name,
            details={"changed": changed},
        )
    return sign_in


def sign_in_remove(*, actor: User, sign_in: SchoolSignIn) -> None:
    """Take a service off the school's list. A school's own service is deleted with the
    links to it; accounts stay (with their classes), reachable by other ways in."""
    school = sign_in.school
    _check_admin_school(actor, school)
    provider = sign_in.provider
    with transaction.atomic():
        if provider.school_id == school.id:
            provider.delete()
        else:
            ExternalIdentity.objects.filter(provider=provider, user__school=school).delete()
            sign_in.delete()
        classroom_services.audit_record(
            actor=actor, action="identity.provider_remove", school=school, target=provider.name
        )


# Learning platforms: the one-time registration address


def platform_invitation_create(*, actor: User, school: School) -> PlatformInvitation:
    """A registration address for one platform, valid for a day and usable once."""
    _check_admin_school(actor, school)
    with transaction.atomic():
        invitation = PlatformInvitation.objects.create(
            school=school,
            token=secrets.token_urlsafe(32),
            created_by=actor,
            expires_at=timezone.now() + timedelta(hours=INVITATION_VALID_HOURS),
        )
        classroom_services.audit_record(actor=actor, action="identity.platform_invite", school=school)
    return invitation


def platform_register(
    *,
    invitation: PlatformInvitation,
    config: dict,
    registration_uuid: str,
    client_id: str,
    deployment_id: str,
    name: str,
) -> LtiPlatform:
    """Record a platform that just registered the tool with a school's one-time address.

    The address is used up here (a conditional update: of two registrations racing with
    one address, one wins); the platform's first deployment is turned on, since the school
    admin asked for this registration.
    """
    from lti_tool.models import LtiDeployment, LtiRegistration

    with transaction.atomic():
        used = PlatformInvitation.objects.filter(pk=invitation.pk, used_at=None, expires_at__gt=timezone.now()).update(
            used_at=timezone.now()
        )
        if not used:
            raise SignInRefused(
                "invitation",
                _("This registration address was already used or has expired. Ask the school admin for a new one."),
                detail=_("A platform tried to register with an address that was used or expired."),
            )
        registration = LtiRegistration.objects.create(
            uuid=registration_uuid,
            name=name[:255],
            issuer=config["issuer"],
            client_id=client_id,
            auth_url=config["authorization_endpoint"],
            token_url=config["token_endpoint"],
            keyset_url=config["jwks_uri"],
        )
        platform = LtiPlatform.objects.create(
            registration=registration, school=invitation.school, registered_by=invitation.created_by
        )
        if deployment_id:
            LtiDeployment.objects.create(registration=registration, deployment_id=deployment_id, is_active=True)
        PlatformInvitation.objects.filter(pk=invitation.pk).update(platform=platform)
        classroom_services.audit_record(
            actor=None,
            action="identity.platform_register",
            school=invitation.school,
            target=name,
            details={"issuer": config["issuer"][:200]},
        )
    return platform


def deployment_set_active(*, actor: User, platform: LtiPlatform, deployment_id: int, active: bool) -> None:
    """Turn one of the platform's deployments on (it may launch) or off."""
    from lti_tool.models import LtiDeployment

    _check_admin_school(actor, platform.school)
    with transaction.atomic():
        changed = LtiDeployment.objects.filter(
            pk=deployment_id, registration=platform.registration, is_active=not active
        ).update(is_active=active)
        if changed:
            classroom_services.audit_record(
                actor=actor,
                action="identity.deployment_on" if active else "identity.deployment_off",
                school=platform.school,
                target=platform.registration.name,
            )


def platform_remove(*, actor: User, platform: LtiPlatform) -> None:
    """Forget a platform: its launches are refused from now on. Classes, people and
    conversations stay; the course links and the platform's identities go."""
    school = platform.school
    _check_admin_school(actor, school)
    name = platform.registration.name
    with transaction.atomic():
        platform.registration.delete()  # cascades: deployments, contexts, course links, LTI users
        classroom_services.audit_record(actor=actor, action="identity.platform_remove", school=school, target=name)


def _names_update(person: User, first_name: str, last_name: str, email: str) -> bool:
    """Keep an account's name as its platform or service says; True if it changed."""
    changed = []
    if first_name and person.first_name != first_name:
        person.first_name = first_name
        changed.append("first_name")
    if last_name and person.last_name != last_name:
        person.last_name = last_name
        changed.append("last_name")
    if email and person.email.lower() != email.lower():
        if not User.objects.filter(email__iexact=email).exclude(pk=person.pk).exists():
            person.email = email
            changed.append("email")
    if changed:
        person.save(update_fields=changed)
    return bool(changed)


def platform_person(*, platform: LtiPlatform, lti_user: object) -> tuple[User, bool]:
    """The account of someone a platform launched or lists (django-lti's `LtiUser`: the
    platform's subject), made on first sight; returns (account, whether its name changed).

    A platform's registration is the school's choice to take its course rosters, so the
    account is made without asking. Its e-mail is kept only if no other account uses it:
    accounts are never merged by e-mail.
    """
    claims = {
        "given_name": lti_user.given_name,
        "family_name": lti_user.family_name,
        "name": lti_user.name,
        "email": lti_user.email,
    }
    first_name, last_name = claim_rules.person_names(claims)
    email = claim_rules.person_email(claims)
    with transaction.atomic():
        if lti_user.auth_user_id:
            person = User.objects.select_for_update().get(pk=lti_user.auth_user_id)
            return person, _names_update(person, first_name, last_name, email)
        if not (first_name or last_name):
            first_name = _("Student")
        if email and User.objects.filter(email__iexact=email).exists():
            email = ""
        person = User(
            username=classroom_services.username_new(first_name, last_name),
            first_name=first_name,
            last_name=last_name,
            email=email,
            school=platform.school,
        )
        person.set_unusable_password()
        person.save()
        claimed = type(lti_user).objects.filter(pk=lti_user.pk, auth_user=None).update(auth_user=person)
        if not claimed:  # another launch of the same person made their account first
            transaction.set_rollback(True)
            lti_user.refresh_from_db()
            return User.objects.get(pk=lti_user.auth_user_id), False
        lti_user.auth_user = person
        classroom_services.audit_record(
            actor=None,
            action="identity.account_create",
            school=platform.school,
            target=f"{person.get_full_name()} ({person.username})",
            subject=person,
            details={"service": platform.registration.name[:100]},
        )
    return person, False


def course_link(
    *, platform: LtiPlatform, context: object, teacher: User, classroom: Classroom | None = None, new_name: str = ""
) -> CourseLink:
    """Link a course to one of the teacher's classes, or to a new class (named after the
    course) that the teacher then teaches. The course's roster fills it from then on."""
    from classrooms.selectors import classrooms_taught_by

    school = platform.school
    if teacher.school_id != school.id:
        raise SignInRefused("other_school", _("This class belongs to another school."))
    with transaction.atomic():
        if classroom is None:
            try:
                classroom = classroom_services.classroom_create(actor=teacher, school=school, name=new_name)
            except classroom_services.ActionRefused as refusal:
                raise SignInRefused("class_name", refusal.message) from None
            classroom_services.staff_assign(actor=teacher, classroom=classroom, person=teacher)
        elif not classrooms_taught_by(teacher).filter(pk=classroom.pk, school=school).exists():
            raise SignInRefused(
                "not_your_class",
                _("You can only open a class you teach."),
                detail=_("A course teacher chose a class they do not teach."),
            )
        link, _created = CourseLink.objects.update_or_create(
            context=context, defaults={"classroom": classroom, "linked_by": teacher, "roster_actor": teacher}
        )
        classroom_services.audit_record(
            actor=teacher,
            action="identity.course_link",
            school=school,
            target=classroom.name,
            details={"classroom": classroom.id, "course": (context.title or context.id_on_platform)[:100]},
        )
    return link


def course_member_place(*, link: CourseLink, person: User, role: str | None, actor: User) -> str:
    """Give the person the class role their course role gives (None: no place in the class).

    Returns what happened: "added", "changed", "removed", "kept" or "refused" (a
    refusal of classrooms' own rules, e.g. a student account as a course's teacher).
    Every change goes through classrooms' services, which close the sockets of people who
    lose access.
    """
    classroom = link.classroom
    current = Membership.objects.filter(classroom=classroom, user=person).values_list("role", flat=True).first()
    if current == role:
        return "kept"
    try:
        if current is not None:
            classroom_services.member_remove(actor=actor, classroom=classroom, person=person)
        if role is None:
            return "removed" if current is not None else "kept"
        if role == Membership.Role.STUDENT:
            classroom_services.student_enrol(actor=actor, classroom=classroom, person=person)
        else:
            classroom_services.staff_assign(actor=actor, classroom=classroom, person=person, role=role)
    except classroom_services.ActionRefused as refusal:
        problem_record(
            refusal=SignInRefused("roster_refused_person", refusal.message, detail=refusal.message),
            school=classroom.school,
            platform=link.context.deployment.registration.school_platform,
        )
        return "refused"
    return "added" if current is None else "changed"


def _roster_actor(link: CourseLink, instructors: list[User]) -> User | None:
    """Whom the roster's changes are recorded under: a teacher of the course."""
    candidates = ([link.roster_actor] if link.roster_actor else []) + instructors
    for person in candidates:
        if person.is_active and person.school_id == link.classroom.school_id:
            return person
    return None


def course_roster_sync(*, link: CourseLink) -> dict[str, int]:
    """Read the course's roster from its platform and apply it; SignInRefused (and nothing
    changed) when the platform does not answer or refuses."""
    from classrooms.identity import lti

    members = lti.roster_fetch(link.context)
    return course_roster_apply(link=link, members=members)


def course_roster_apply(*, link: CourseLink, members: list[dict]) -> dict[str, int]:
    """Make the class's course members exactly the course's active members.

    Adds the new, updates names and roles, and removes everyone the course no longer lists
    as active (their open sockets close). People placed in the class by hand, with no
    account from this platform, are left alone.
    """
    from lti_tool.models import LtiMembership, LtiUser

    platform = link.context.deployment.registration.school_platform
    registration = platform.registration
    link.context.update_memberships(members)  # django-lti's own record of the course
    active = {str(m["user_id"]): m for m in members if m.get("user_id") and m.get("status", "Active") == "Active"}
    LtiMembership.objects.filter(context=link.context).exclude(user__sub__in=list(active)).update(is_active=False)
    counts = {"added": 0, "updated": 0, "removed": 0, "refused": 0}
    placed: list[tuple[User, str | None]] = []
    for sub, member in active.items():
        lti_user = LtiUser.objects.get(registration=registration, sub=sub)
        person, renamed = platform_person(platform=platform, lti_user=lti_user)
        placed.append((person, lti_course_role(member.get("roles", []))))
        counts["updated"] += int(renamed)
    instructors = [p for p, role in placed if role == Membership.Role.TEACHER]
    actor = _roster_actor(link, instructors)
    if actor is None:
        raise SignInRefused(
            "no_course_teacher",
            _("No teacher of the course has an account yet, so the roster was not applied."),
            detail=_("The course's roster lists no teacher with an account: a teacher should open the tutor once."),
        )
    for person, role in placed:
        outcome = course_member_place(link=link, person=person, role=role, actor=actor)
        if outcome in ("added", "refused"):
            counts[outcome] += 1
        elif outcome == "changed":
            counts["updated"] += 1
        elif outcome == "removed":
            counts["removed"] += 1
    listed = {p.id for p, _role in placed}
    from_platform = LtiUser.objects.filter(registration=registration, auth_user__isnull=False).values("auth_user_id")
    gone = (
        Membership.objects.filter(classroom=link.classroom, user_id__in=from_platform)
        .exclude(user_id__in=listed)
        .select_related("user")
    )
    for membership in gone:
        if course_member_place(link=link, person=membership.user, role=None, actor=actor) == "removed":
            counts["removed"] += 1
    with transaction.atomic():
        CourseLink.objects.filter(pk=link.pk).update(roster_synced_at=timezone.now(), roster_actor=actor)
        classroom_services.audit_record(
            actor=actor,
            action="identity.roster_sync",
            school=link.classroom.school,
            target=link.classroom.name,
            details={"classroom": link.classroom_id, **counts},
        )
    return counts
