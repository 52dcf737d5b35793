"""What every page's template needs to know about the person: whether their pages carry
the urgent safeguarding alerts banner, and the alerts open now (so the banner shows
before the socket opens, and without JavaScript)."""

from __future__ import annotations

from django.http import HttpRequest

from classrooms.selectors import may_receive_alerts
from tutor.safeguarding import selectors


def safeguarding_alerts(request: HttpRequest) -> dict:
    user = getattr(request, "user", None)
    if user is None or not may_receive_alerts(user):
        return {"alerts_banner": False}
    return {
        "alerts_banner": True,
        "open_alerts": [selectors.banner_view(a) for a in selectors.open_alerts_for(user)],
    }
