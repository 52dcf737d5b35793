"""Middleware of the whole site: the security policy, and a clear answer while the
database is unreachable."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

log = logging.getLogger(__name__)

# A lost or refused connection (PostgreSQL restarting), not a bad query.
DATABASE_UNREACHABLE = (OperationalError, InterfaceError)
RETRY_AFTER_SECONDS = 5


class ContentSecurityPolicyMiddleware:
    """Sends the strict policy from settings on every response (Django 5.2 has no CSP built in)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        return response


def database_unavailable(request: HttpRequest) -> HttpResponse:
    """503 while the database is unreachable: JSON for the pages' scripts, a page that
    reloads itself for a person. The change was not saved; sending it again is safe."""
    message = _("The server is restarting. Nothing was saved: try again in a few seconds.")
    if "application/json" in request.headers.get("Accept", "") or request.path.startswith("/api/"):
        response = JsonResponse({"error": message, "code": "unavailable"}, status=503)
    else:
        # A page of its own: base.html would read the signed-in person from the database.
        response = render(
            request,
            "unavailable.html",
            {"message": message, "reload": request.method == "GET", "seconds": RETRY_AFTER_SECONDS},
            status=503,
        )
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


class DatabaseUnavailableMiddleware:
    """Answers 503, not 500, when the database cannot be reached (a PostgreSQL restart).

    Placed after AuthenticationMiddleware: it reads the signed-in person here, where a
    lost database can still be answered (later middleware would turn the error into a
    500), and catches the same errors from views.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            request.user.is_authenticated  # noqa: B018  (loads the session and the person)
        except DATABASE_UNREACHABLE as exc:
            log.warning("database unreachable for %s %s: %s", request.method, request.path, type(exc).__name__)
            _session_unread(request)
            return database_unavailable(request)
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, DATABASE_UNREACHABLE):
            log.warning("database unreachable for %s %s: %s", request.method, request.path, type(exception).__name__)
            _session_unread(request)
            return database_unavailable(request)
        return None


def _session_unread(request: HttpRequest) -> None:
    """A session the database could not give: read as empty from here on, so that the
    middleware above this one (which reads it on the way out) asks the database no more.
    Its key stays, and it is not modified: the cookie is kept and nothing is saved."""
    session = getattr(request, "session", None)
    if session is not None and not hasattr(session, "_session_cache"):
        session._session_cache = {}  # Django's SessionBase caches what load() returned here
