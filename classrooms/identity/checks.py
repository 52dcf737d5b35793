"""The "Test" button of a school's sign-in page: talks to the service or platform as a
sign-in would, and says in plain words what is right and what is wrong."""

from __future__ import annotations

from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import requests
from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from classrooms.identity import cas, oidc
from classrooms.identity.errors import SignInRefused
from classrooms.identity.http import TimeoutSession
from classrooms.identity.models import IdentityProvider, LtiPlatform

CLOCK_SKEW_WARNING_SECONDS = 30


@dataclass(frozen=True)
class Check:
    ok: bool
    label: str
    detail: str = ""


def _clock(response: requests.Response, what: str) -> Check:
    """How far the other side's clock is from ours, from its HTTP Date header."""
    stamp = response.headers.get("Date")
    if not stamp:
        return Check(True, _("Clocks"), _("%(what)s sends no Date header; clocks not compared.") % {"what": what})
    try:
        skew = (parsedate_to_datetime(stamp) - timezone.now()).total_seconds()
    except (TypeError, ValueError):
        return Check(True, _("Clocks"), _("%(what)s's Date header could not be read.") % {"what": what})
    if abs(skew) > CLOCK_SKEW_WARNING_SECONDS:
        values = {"what": what, "seconds": abs(skew), "leeway": settings.IDENTITY_CLOCK_LEEWAY_SECONDS}
        text = (
            _(
                "%(what)s's clock is %(seconds)d seconds ahead of this server's. Tokens are accepted with "
                "%(leeway)d seconds of leeway: set both clocks by NTP."
            )
            if skew > 0
            else _(
                "%(what)s's clock is %(seconds)d seconds behind this server's. Tokens are accepted with "
                "%(leeway)d seconds of leeway: set both clocks by NTP."
            )
        )
        return Check(abs(skew) <= settings.IDENTITY_CLOCK_LEEWAY_SECONDS, _("Clocks"), text % values)
    return Check(True, _("Clocks"), _("%(what)s's clock agrees with this server's.") % {"what": what})


def _get(url: str) -> requests.Response:
    return TimeoutSession().get(url, verify=settings.OIDC_VERIFY_SSL)


def provider_checks(request: HttpRequest, provider: IdentityProvider) -> list[Check]:
    if provider.protocol == IdentityProvider.Protocol.OIDC:
        return _oidc_checks(request, provider)
    return _cas_checks(request, provider)


def _oidc_checks(request: HttpRequest, provider: IdentityProvider) -> list[Check]:
    checks = []
    redirect_uri = request.build_absolute_uri(oidc.callback_path(provider))
    after_logout = request.build_absolute_uri(reverse("login"))
    checks.append(
        Check(
            True,
            _("Addresses to register at the provider"),
            _("Redirect URI: %(redirect)s — post-logout redirect URI: %(after)s")
            % {"redirect": redirect_uri, "after": after_logout},
        )
    )
    secret = provider.client_secret()
    checks.append(
        Check(
            bool(secret),
            _("Client secret"),
            _("Found in the server's environment.")
            if secret
            else _("Missing: the server's operator must set %(variable)s (or %(variable)s_FILE).")
            % {"variable": provider.secret_variable},
        )
    )
    url = provider.issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        response = _get(url)
        response.raise_for_status()
        checks.append(_clock(response, provider.name))
        document = oidc.discovery(provider, fresh=True)
    except requests.RequestException as error:
        checks.append(
            Check(False, _("Discovery"), _("%(url)s cannot be read: %(error)s") % {"url": url, "error": error})
        )
        return checks
    except SignInRefused as refusal:
        checks.append(Check(False, _("Discovery"), refusal.detail))
        return checks
    checks.append(Check(True, _("Discovery"), _("The provider's configuration names the right issuer.")))
    try:
        keys = _get(document["jwks_uri"]).json().get("keys") or []
        checks.append(
            Check(
                bool(keys),
                _("Signing keys"),
                _("The provider publishes %(n)d key(s).") % {"n": len(keys)}
                if keys
                else _("The provider publishes no signing key."),
            )
        )
    except (requests.RequestException, ValueError, AttributeError) as error:
        checks.append(Check(False, _("Signing keys"), str(error)[:200]))
    checks.append(
        Check(
            True,
            _("Signing out"),
            _("The provider ends its own session when someone signs out here.")
            if document.get("end_session_endpoint")
            else _("The provider offers no sign-out address: signing out ends only this site's session."),
        )
    )
    return checks


def _cas_checks(request: HttpRequest, provider: IdentityProvider) -> list[Check]:
    service = cas.service_url(request, provider)
    checks = [
        Check(
            True,
            _("Service address to register at the ENT"),
            _("%(service)s (also the single sign-out address)") % {"service": service},
        )
    ]
    base = provider.server_url.rstrip("/")
    try:
        response = _get(base + "/login")
        checks.append(
            Check(
                response.status_code < 400,
                _("CAS server"),
                _("The sign-in page answers.")
                if response.status_code < 400
                else _("The sign-in page answered %(status)s.") % {"status": response.status_code},
            )
        )
        checks.append(_clock(response, provider.name))
        probe = _get(base + "/p3/serviceValidate?service=" + requests.utils.quote(service, safe="") + "&ticket=ST-test")
        speaks_cas3 = b"authenticationFailure" in probe.content
        checks.append(
            Check(
                speaks_cas3,
                _("CAS 3.0 validation"),
                _("The server validates tickets at /p3/serviceValidate.")
                if speaks_cas3
                else _("/p3/serviceValidate did not answer as CAS 3.0 does (status %(status)s).")
                % {"status": probe.status_code},
            )
        )
    except requests.RequestException as error:
        checks.append(
            Check(False, _("CAS server"), _("%(url)s cannot be reached: %(error)s") % {"url": base, "error": error})
        )
    return checks


def platform_checks(request: HttpRequest, platform: LtiPlatform) -> list[Check]:
    from pylti1p3.exception import LtiException
    from pylti1p3.service_connector import ServiceConnector

    from classrooms.identity.lti import NRPS_SCOPE, signing_registration

    registration = platform.registration
    checks = [
        Check(
            True,
            _("Tool addresses"),
            _("Login: %(login)s — launch and deep linking: %(launch)s — keys: %(jwks)s")
            % {
                "login": request.build_absolute_uri(reverse("identity_lti_login", args=[registration.uuid])),
                "launch": request.build_absolute_uri(reverse("identity_lti_launch")),
                "jwks": request.build_absolute_uri(reverse("identity_lti_jwks")),
            },
        )
    ]
    try:
        response = _get(registration.keyset_url)
        keys = response.json().get("keys") or []
        checks.append(
            Check(
                bool(keys),
                _("Platform's keys"),
                _("The platform publishes %(n)d key(s).") % {"n": len(keys)}
                if keys
                else _("The platform publishes no key: launches cannot be verified."),
            )
        )
        checks.append(_clock(response, registration.name))
    except (requests.RequestException, ValueError, AttributeError) as error:
        checks.append(
            Check(
                False, _("Platform's keys"), _("%(url)s: %(error)s") % {"url": registration.keyset_url, "error": error}
            )
        )
    try:
        connector = ServiceConnector(signing_registration(registration), requests_session=TimeoutSession())
        connector.get_access_token([NRPS_SCOPE])
        checks.append(Check(True, _("Rosters"), _("The platform accepts the tool's key and gives roster access.")))
    except LtiException as error:
        checks.append(
            Check(
                False,
                _("Rosters"),
                _(
                    "The platform refused the tool's token request (%(error)s): check the tool's key (JWKS address) "
                    "and that the tool may read rosters."
                )
                % {"error": str(error)[:160]},
            )
        )
    except requests.RequestException as error:
        checks.append(Check(False, _("Rosters"), str(error)[:200]))
    deployments = list(registration.deployments.all())
    unknown = [d for d in deployments if not d.is_active]
    checks.append(
        Check(
            not unknown and bool(deployments),
            _("Deployments"),
            _("Launches from deployment(s) %(ids)s are refused until you turn them on below.")
            % {"ids": ", ".join(d.deployment_id for d in unknown)}
            if unknown
            else (
                _("%(n)d deployment(s), all on.") % {"n": len(deployments)}
                if deployments
                else _("No deployment yet: the platform sends one with its first launch.")
            ),
        )
    )
    return checks
