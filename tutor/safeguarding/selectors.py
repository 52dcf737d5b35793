"""Who may see an urgent alert, and what they see.

The alert's text (the student's words) goes only to the class's teachers and reviewers
and to the school's designated safeguarding staff, as they are now. A school admin
alerted by escalation sees that the alert exists and may acknowledge it, not the words.
Banners and e-mails carry no words at all: reading them means opening the alert's page,
which is audited.
"""

from __future__ import annotations

import math

from django.db.models import Q, QuerySet
from django.http import Http404
from django.urls import reverse
from django.utils import timezone

from classrooms.models import User
from classrooms.selectors import classrooms_reviewed_by, is_safeguarding_contact
from tutor.models import AlertNotice, SafeguardingAlert, SafeguardingExample
from tutor.safeguarding import classifier


def reviews_class(user: User, classroom_id: int) -> bool:
    return classrooms_reviewed_by(user).filter(pk=classroom_id).exists()


def may_read_alert_text(user: User, alert: SafeguardingAlert) -> bool:
    """The class's teachers and reviewers, and the school's designated staff, now."""
    if not user.is_authenticated or not user.is_active:
        return False
    return reviews_class(user, alert.classroom_id) or is_safeguarding_contact(user, alert.school_id)


def _visible_alerts(user: User) -> QuerySet[SafeguardingAlert]:
    """Alerts this person may open: of classes they review, of the school whose
    designated staff they are, or ones they were alerted of as the school's admin."""
    if not user.is_authenticated or not user.is_active or user.school_id is None:
        return SafeguardingAlert.objects.none()
    allowed = Q(classroom__in=classrooms_reviewed_by(user))
    if is_safeguarding_contact(user, user.school_id):
        allowed |= Q(school_id=user.school_id)
    if user.is_school_admin:
        allowed |= Q(school_id=user.school_id, notices__person=user)
    return SafeguardingAlert.objects.filter(allowed, school_id=user.school_id).distinct()


def alert_for_person(user: User, alert_id: int) -> SafeguardingAlert:
    """The alert if this person may open it; 404 for missing and forbidden alike."""
    alert = (
        _visible_alerts(user)
        .select_related("school", "classroom", "conversation__student", "question", "acknowledged_by", "outcome_by")
        .filter(pk=alert_id)
        .first()
    )
    if alert is None:
        raise Http404
    return alert


def alerts_for(user: User, *, limit: int = 50) -> list[SafeguardingAlert]:
    """Unacknowledged alerts first, then the most recent ones."""
    alerts = _visible_alerts(user).select_related("classroom", "acknowledged_by").order_by("-created_at", "-id")
    return sorted(alerts[:limit], key=lambda a: a.acknowledged_at is not None)


def open_alerts_for(user: User) -> list[SafeguardingAlert]:
    """Unacknowledged alerts this person was alerted of: the banners on their pages."""
    alerts = (
        _visible_alerts(user)
        .filter(acknowledged_at__isnull=True, notices__person=user, notices__channel=AlertNotice.Channel.APP)
        .select_related("classroom")
        .order_by("created_at", "id")
        .distinct()
    )
    return list(alerts[:20])


def banner_view(alert: SafeguardingAlert) -> dict:
    """What a banner shows: no student, no words (those are on the audited page)."""
    return {
        "id": alert.pk,
        "classroom": alert.classroom.name,
        "category": alert.category,
        "category_label": str(classifier.CATEGORY_LABELS.get(alert.category, alert.category)),
        "created_at": alert.created_at.isoformat(),
        "step": alert.step,
        "open": alert.acknowledged_at is None,
        "acknowledged_by": str(alert.acknowledged_by) if alert.acknowledged_by_id else "",
        "url": reverse("safeguarding_alert", args=[alert.pk]),
    }


def alert_banner_for(user: User, alert_id: int) -> dict | None:
    """The banner of one alert as this person sees it now; None when they may not."""
    try:
        alert = alert_for_person(user, alert_id)
    except Http404:
        return None
    return banner_view(alert)


def notices_of(alert: SafeguardingAlert) -> list[AlertNotice]:
    """Who was alerted, when, by which channel: for the alert's page."""
    return list(alert.notices.select_related("person").order_by("step", "created_at", "id"))


def minutes_to_next_step(alert: SafeguardingAlert) -> int | None:
    """Whole minutes (at least 1) until the alert moves on; None when it will not."""
    if alert.acknowledged_at is not None or alert.next_step_at is None:
        return None
    return max(1, math.ceil((alert.next_step_at - timezone.now()).total_seconds() / 60))


def examples_of_school(school_id: int) -> QuerySet[SafeguardingExample]:
    return SafeguardingExample.objects.filter(school_id=school_id).select_related("added_by").order_by("-added_at")


def example_for_school_admin(user: User, example_id: int) -> SafeguardingExample:
    if not (user.is_authenticated and user.is_active and user.is_school_admin and user.school_id):
        raise Http404
    example = SafeguardingExample.objects.filter(pk=example_id, school_id=user.school_id).first()
    if example is None:
        raise Http404
    return example
