"""Reads of the training loop: how each model's drafts fared with the school's teachers."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, Q
from django.utils import timezone

from classrooms.models import School
from classrooms.selectors import model_label
from tutor.models import Message


def decision_rates_by_model(school: School, *, days: int = 30) -> list[dict]:
    """Per drafting model, over the school's decisions of the last `days` days: how many,
    and the shares approved as drafted, edited, and rejected (with or without a reply)."""
    since = timezone.now() - timedelta(days=days)
    rows = (
        Message.objects.filter(
            sender=Message.Sender.TUTOR,
            conversation__classroom__school=school,
            reviewed_at__gte=since,
            decision__in=Message.Decision.values,
        )
        .values("model_key")
        .annotate(
            decided=Count("id"),
            as_drafted=Count("id", filter=Q(decision=Message.Decision.AS_DRAFTED)),
            edited=Count("id", filter=Q(decision=Message.Decision.EDITED)),
            rejected=Count("id", filter=Q(decision__in=(Message.Decision.REJECTED, Message.Decision.TEACHER_REPLY))),
        )
        .order_by("-decided")
    )
    return [
        {
            "key": row["model_key"],
            "label": model_label(row["model_key"]) or row["model_key"] or "?",
            "decided": row["decided"],
            "as_drafted": round(100 * row["as_drafted"] / row["decided"]),
            "edited": round(100 * row["edited"] / row["decided"]),
            "rejected": round(100 * row["rejected"] / row["decided"]),
        }
        for row in rows
    ]
