"""Who may see what, for schools and classes. One place for each rule."""

from django.db.models import QuerySet
from django.http import Http404

from classrooms.models import REVIEW_ROLES, Classroom, Membership, User


def classrooms_of_student(user: User) -> QuerySet[Classroom]:
    return Classroom.objects.filter(
        memberships__user=user, memberships__role=Membership.Role.STUDENT, archived=False
    ).order_by("name")


def classrooms_reviewed_by(user: User) -> QuerySet[Classroom]:
    """Classes whose drafts this person may review (teachers and reviewers)."""
    if not user.is_authenticated or not user.is_active:
        return Classroom.objects.none()
    return Classroom.objects.filter(
        memberships__user=user, memberships__role__in=REVIEW_ROLES, archived=False
    ).order_by("name")


def classrooms_taught_by(user: User) -> QuerySet[Classroom]:
    """Classes this person administers as a teacher (settings, join code)."""
    return Classroom.objects.filter(
        memberships__user=user, memberships__role=Membership.Role.TEACHER, archived=False
    ).order_by("name")


def is_student_of(user: User, classroom_id: int) -> bool:
    return (
        user.is_authenticated
        and user.is_active
        and Membership.objects.filter(
            user=user, classroom_id=classroom_id, role=Membership.Role.STUDENT, classroom__archived=False
        ).exists()
    )


def may_review(user: User, classroom_id: int) -> bool:
    return (
        user.is_authenticated
        and user.is_active
        and Membership.objects.filter(
            user=user, classroom_id=classroom_id, role__in=REVIEW_ROLES, classroom__archived=False
        ).exists()
    )


def classroom_for_student(user: User, classroom_id: int) -> Classroom:
    """The class, if this person is its student; 404 otherwise (missing and forbidden look alike)."""
    classroom = classrooms_of_student(user).filter(pk=classroom_id).first()
    if classroom is None:
        raise Http404
    return classroom


def classroom_for_teacher(user: User, classroom_id: int) -> Classroom:
    classroom = classrooms_taught_by(user).filter(pk=classroom_id).first()
    if classroom is None:
        raise Http404
    return classroom
