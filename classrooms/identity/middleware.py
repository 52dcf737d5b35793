"""The tutor inside a learning platform's frame, and nowhere else.

Everywhere, the site keeps its strict policy: `frame-ancestors 'none'`, X-Frame-Options
DENY, and SameSite=Lax cookies. A session opened by an LTI launch (and the pages of the
launch itself) differs in two ways only:

- `frame-ancestors` names the launching platform's own origins (no other site may frame
  it, and X-Frame-Options is dropped, since it cannot name an origin);
- over HTTPS, its session, CSRF and message cookies, and pylti1p3's state cookies, are
  sent `SameSite=None; Secure; Partitioned`. Inside another site's frame a Lax cookie is
  never sent back, so forms and sockets would fail. `Partitioned` (CHIPS) keeps those
  cookies in a jar keyed by the platform's site: they are sent only inside that
  platform's frames, never to the tutor opened on its own, and browsers that block
  third-party cookies still accept them. Over plain HTTP (development) nothing changes:
  browsers refuse SameSite=None without Secure.

So CSRF protection stays as it is for everyone (Django's token, plus SameSite=Lax
outside frames), and a framed session cannot be replayed at the top level.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from http.cookies import Morsel

from django.conf import settings
from django.http import HttpRequest, HttpResponse

FRAME_SESSION_KEY = "identity_frame"  # {"origins": [...], "platform": id}
LTI_COOKIE_PREFIX = "lti1p3-"
_FRAME_ANCESTORS = re.compile(r"frame-ancestors[^;]*")
_FORM_ACTION = re.compile(r"form-action[^;]*")


def allow_in_frame(response: HttpResponse, origins: list[str]) -> None:
    """Let these origins (and only these) frame this response."""
    response.identity_frame_origins = [o for o in origins if o]


def allow_form_target(response: HttpResponse, origin: str) -> None:
    """Let this response's form post to one other origin (a deep-linking answer)."""
    response.identity_form_targets = [origin]


def _frame_origins(request: HttpRequest, response: HttpResponse) -> list[str] | None:
    origins = getattr(response, "identity_frame_origins", None)
    if origins is not None:
        return origins
    session = getattr(request, "session", None)
    frame = session.get(FRAME_SESSION_KEY) if session is not None else None
    return (frame or {}).get("origins") or None


def _cross_site(morsel: Morsel) -> None:
    morsel["secure"] = True
    # Python 3.11's cookies know no "Partitioned" attribute; it rides on SameSite's value.
    morsel["samesite"] = "None; Partitioned"


class PlatformFrameMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        origins = _frame_origins(request, response)
        secure = request.is_secure()
        if origins:
            policy = response.headers.get("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
            ancestors = "frame-ancestors " + " ".join(origins)
            policy = (
                _FRAME_ANCESTORS.sub(ancestors, policy) if "frame-ancestors" in policy else f"{policy}; {ancestors}"
            )
            response.headers["Content-Security-Policy"] = policy
            if "X-Frame-Options" in response.headers:
                del response.headers["X-Frame-Options"]
        targets = getattr(response, "identity_form_targets", None)
        if targets:
            policy = response.headers.get("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
            response.headers["Content-Security-Policy"] = _FORM_ACTION.sub(
                "form-action 'self' " + " ".join(targets), policy
            )
        if secure:
            framed_cookies = (settings.SESSION_COOKIE_NAME, settings.CSRF_COOKIE_NAME, "messages")
            for name, morsel in response.cookies.items():
                if name.startswith(LTI_COOKIE_PREFIX) or (origins and name in framed_cookies):
                    _cross_site(morsel)
        return response
