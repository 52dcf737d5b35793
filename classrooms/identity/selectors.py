"""Reads for sign-in services and platforms, and who may reach which. 404 for "not yours"."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q, QuerySet
from django.http import Http404
from django.utils import timezone

from classrooms.identity.models import (
    CourseLink,
    IdentityProvider,
    LtiPlatform,
    PlatformInvitation,
    SchoolSignIn,
    SignInProblem,
)
from classrooms.models import School, User
from classrooms.selectors import is_school_admin

SCHOOL_COOKIE = "tutor_school"  # the school whose sign-in buttons the login page shows


def sign_ins_of_school(school: School) -> QuerySet[SchoolSignIn]:
    return SchoolSignIn.objects.filter(school=school).select_related("provider").order_by("provider__name")


def sign_in_buttons(school: School | None) -> list[SchoolSignIn]:
    """The "Sign in with …" buttons of a school: its sign-ins that are on."""
    if school is None:
        return []
    return list(sign_ins_of_school(school).filter(enabled=True))


def school_for_login_page(school_id: str | None) -> School | None:
    """Whose buttons the login page shows: the school asked for (by its link or the cookie
    of the last sign-in), or the only school that has any."""
    if school_id and str(school_id).isdigit():
        school = School.objects.filter(pk=int(school_id), sign_ins__enabled=True).distinct().first()
        if school:
            return school
    schools = School.objects.filter(sign_ins__enabled=True).distinct()[:2]
    return schools[0] if len(schools) == 1 else None


def sign_in_to_start(sign_in_id: int) -> SchoolSignIn:
    sign_in = SchoolSignIn.objects.select_related("provider", "school").filter(pk=sign_in_id, enabled=True).first()
    if sign_in is None:
        raise Http404
    return sign_in


def sign_in_of_flow(sign_in_id: int, provider: IdentityProvider) -> SchoolSignIn | None:
    """The sign-in an attempt started from, if it is still this provider's."""
    return SchoolSignIn.objects.select_related("provider", "school").filter(pk=sign_in_id, provider=provider).first()


def provider_by_key(key: str, protocol: str) -> IdentityProvider:
    provider = IdentityProvider.objects.filter(key=key, protocol=protocol).first()
    if provider is None:
        raise Http404
    return provider


def shared_providers_not_used_by(school: School) -> QuerySet[IdentityProvider]:
    return IdentityProvider.objects.filter(school=None).exclude(school_sign_ins__school=school).order_by("name")


def sign_in_for_school_admin(user: User, sign_in_id: int) -> SchoolSignIn:
    if not is_school_admin(user):
        raise Http404
    sign_in = (
        SchoolSignIn.objects.select_related("provider", "school")
        .filter(pk=sign_in_id, school_id=user.school_id)
        .first()
    )
    if sign_in is None:
        raise Http404
    return sign_in


def platforms_of_school(school: School) -> QuerySet[LtiPlatform]:
    return LtiPlatform.objects.filter(school=school).select_related("registration").order_by("registration__name")


def platform_for_school_admin(user: User, platform_id: int) -> LtiPlatform:
    if not is_school_admin(user):
        raise Http404
    platform = LtiPlatform.objects.select_related("registration", "school").filter(
        pk=platform_id, school_id=user.school_id
    )
    found = platform.first()
    if found is None:
        raise Http404
    return found


def invitation_usable(token: str) -> PlatformInvitation | None:
    return (
        PlatformInvitation.objects.select_related("school")
        .filter(token=token, used_at=None, expires_at__gt=timezone.now())
        .first()
    )


def open_invitations(school: School) -> QuerySet[PlatformInvitation]:
    return PlatformInvitation.objects.filter(school=school, used_at=None, expires_at__gt=timezone.now()).order_by(
        "-created_at"
    )


def problems_of_school(school: School, *, limit: int = 30) -> list[SignInProblem]:
    return list(
        SignInProblem.objects.filter(school=school).select_related("provider", "platform__registration")[:limit]
    )


def course_links_of_platform(platform: LtiPlatform) -> QuerySet[CourseLink]:
    return (
        CourseLink.objects.filter(context__deployment__registration=platform.registration)
        .select_related("classroom", "context")
        .order_by("classroom__name")
    )


def course_link_for_school_admin(user: User, link_id: int) -> CourseLink:
    if not is_school_admin(user):
        raise Http404
    link = (
        CourseLink.objects.select_related("classroom", "context__deployment__registration__school_platform")
        .filter(pk=link_id, classroom__school_id=user.school_id)
        .first()
    )
    if link is None:
        raise Http404
    return link


def course_links_due(older_than: datetime) -> QuerySet[CourseLink]:
    """Linked courses whose roster was last read before `older_than` (or never)."""
    return (
        CourseLink.objects.filter(Q(roster_synced_at__lt=older_than) | Q(roster_synced_at=None))
        .exclude(context__memberships_url="")
        .filter(classroom__archived=False, context__deployment__is_active=True)
        .select_related("classroom", "context__deployment__registration__school_platform")
    )


def identities_of(person: User) -> QuerySet:
    return person.external_identities.select_related("provider").order_by("provider__name")
