"""CAS 3.0, for the ENTs, with python-cas and django-cas-ng's session tickets.

django-cas-ng reads one CAS server from settings; a school here may have its own, so the
client is built per `IdentityProvider`. The service address is fixed per provider (what
the ENT registers): `/accounts/cas/<key>/`. The ticket is validated by the CAS server
itself (`/p3/serviceValidate`), which refuses forged and replayed tickets; the ticket is
then kept with the session (django-cas-ng's `SessionTicket`), so that the server's
single sign-out request ends that session.
"""

from __future__ import annotations

import logging
from importlib import import_module

import requests
from cas import CASClientV3
from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase
from django.http import HttpRequest
from django.urls import reverse
from django.utils.translation import gettext as _
from django_cas_ng.models import SessionTicket
from django_cas_ng.signals import cas_user_logout
from django_cas_ng.utils import get_user_from_session

from classrooms import signals
from classrooms.identity.errors import SignInRefused
from classrooms.identity.http import TimeoutSession
from classrooms.identity.models import IdentityProvider
from classrooms.models import User

log = logging.getLogger("classrooms.identity")


def service_url(request: HttpRequest, provider: IdentityProvider) -> str:
    return request.build_absolute_uri(reverse("identity_cas_callback", kwargs={"key": provider.key}))


def client(request: HttpRequest, provider: IdentityProvider) -> CASClientV3:
    return CASClientV3(
        service_url=service_url(request, provider),
        server_url=provider.server_url.rstrip("/") + "/",
        verify_ssl_certificate=settings.CAS_VERIFY_SSL_CERTIFICATE,
        session=TimeoutSession(),
    )


def login_url(request: HttpRequest, provider: IdentityProvider) -> str:
    return client(request, provider).get_login_url()


def logout_url(request: HttpRequest, provider: IdentityProvider, after: str) -> str:
    return client(request, provider).get_logout_url(after)


def validate(request: HttpRequest, provider: IdentityProvider, ticket: str) -> tuple[str, dict]:
    """(the CAS user, their attributes) for a service ticket, as the CAS server vouches."""
    if not ticket or len(ticket) > 256:
        raise _ticket_refused(provider)
    try:
        user, attributes, _pgtiou = client(request, provider).verify_ticket(ticket)
    except requests.RequestException as error:
        raise SignInRefused(
            "provider_down",
            _("%(service)s is not answering right now. Try again in a few minutes.") % {"service": provider.name},
            detail=_("The CAS server could not be reached (%(error)s).") % {"error": type(error).__name__},
        ) from error
    except Exception as error:  # an answer that is not CAS XML (a proxy's error page, say)
        log.warning("CAS answer not understood from %s: %s", provider.key, type(error).__name__)
        raise _ticket_refused(provider) from error
    if not user:
        raise _ticket_refused(provider)
    return str(user), dict(attributes or {})


def _ticket_refused(provider: IdentityProvider) -> SignInRefused:
    return SignInRefused(
        "ticket",
        _("%(service)s did not confirm this sign-in. Start again from the sign-in page.") % {"service": provider.name},
        detail=_(
            "The CAS server refused a ticket (forged, already used, expired, or for another service address "
            "than the one registered at the ENT)."
        ),
    )


def remember_ticket(session: SessionBase, ticket: str) -> None:
    """Keep the ticket with the session: the CAS server's sign-out request names it."""
    if not session.session_key:
        session.save()
    SessionTicket.objects.update_or_create(session_key=session.session_key, defaults={"ticket": ticket})


def single_sign_out(request: HttpRequest, provider: IdentityProvider) -> list[int]:
    """End the sessions that the CAS server's logoutRequest names; returns whose they were.
    Their open sockets re-check their session at once, and close (access_changed).

    (django-cas-ng's own `clean_sessions` reads the request as text, which lxml refuses
    when the XML declares its encoding; the same steps are done here from bytes.)
    """
    slos = client(request, provider).get_saml_slos(request.POST.get("logoutRequest", "").encode()) or []
    tickets = [slo.text for slo in slos if slo.text]
    store = import_module(settings.SESSION_ENGINE).SessionStore
    user_ids = []
    for session_ticket in SessionTicket.objects.filter(ticket__in=tickets):
        session = store(session_key=session_ticket.session_key)
        user = get_user_from_session(session)
        cas_user_logout.send(sender="slo", user=user, session=session, ticket=session_ticket.ticket)
        if user.is_authenticated:
            user_ids.append(user.pk)
        session.delete(session_ticket.session_key)
        SessionTicket.objects.filter(session_key=session_ticket.session_key).delete()
    if user_ids:
        signals.access_changed.send(sender=User, user_ids=user_ids)
    return user_ids
