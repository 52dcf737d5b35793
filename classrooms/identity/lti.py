"""LTI 1.3, with django-lti (pylti1p3 underneath) and django-lti-dynamic-registration.

The tool's side of the protocol, and only that: registering with a platform, answering
its OIDC login initiation, validating a launch, signing a deep-linking answer, and reading
a course's roster (Names and Role Provisioning). What a launch *does* to accounts and
classes is in `services`.

What pylti1p3 2.0.0 leaves out, added here: a launch's nonce is accepted once (pylti1p3
only checks that it was issued), tokens get a little leeway for clocks, and every refusal
says in plain words what went wrong.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import jwt
import requests
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from lti_dynamic_registration.types import LmsLtiRegistration, LmsLtiToolConfiguration, LtiMessage
from lti_tool.lti_core.utils import normalize_role
from lti_tool.models import Key, LtiContext, LtiLaunch, LtiRegistration
from lti_tool.utils import DjangoToolConfig
from pylti1p3.contrib.django import DjangoCacheDataStorage, DjangoMessageLaunch, DjangoOIDCLogin
from pylti1p3.deep_link import DeepLink
from pylti1p3.deep_link_resource import DeepLinkResource
from pylti1p3.exception import LtiException
from pylti1p3.names_roles import NamesRolesProvisioningService
from pylti1p3.service_connector import ServiceConnector

from classrooms.identity.errors import SignInRefused
from classrooms.identity.http import TimeoutSession
from classrooms.identity.models import LtiPlatform
from classrooms.models import Membership

log = logging.getLogger("classrooms.identity")

MEMBERSHIP = "http://purl.imsglobal.org/vocab/lis/v2/membership#"
INSTRUCTOR = MEMBERSHIP + "Instructor"
ADMINISTRATOR = MEMBERSHIP + "Administrator"
LEARNER = MEMBERSHIP + "Learner"
TEACHING_ASSISTANT = "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant"
NRPS_SCOPE = "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"


def _storage() -> DjangoCacheDataStorage:
    # Redis, shared by every web process: the login may reach one process, the launch another.
    return DjangoCacheDataStorage(cache_name="identity")


def tool_key() -> Key:
    """The tool's signing key (made on first use); its public half is in the JWKS."""
    key = Key.objects.active().order_by("-datetime_created").first()
    return key or Key.objects.generate()


def signing_registration(registration: LtiRegistration) -> object:
    """pylti1p3's registration, with the tool's key to sign with (made if none exists yet)."""
    tool_key()
    return registration.to_registration()


def course_role(roles: list[str]) -> str | None:
    """The class role a course role gives: Instructor → teacher, teaching assistant →
    reviewer, Learner → student; anything else (mentor, guest) → no place in the class."""
    roles = {normalize_role(r) for r in roles or [] if isinstance(r, str)}
    if INSTRUCTOR in roles or ADMINISTRATOR in roles:
        return Membership.Role.TEACHER
    if TEACHING_ASSISTANT in roles:
        return Membership.Role.REVIEWER
    if LEARNER in roles:
        return Membership.Role.STUDENT
    return None


# Registration: the tool's description, and fetching the platform's


class ToolMessage(LtiMessage):
    # django-lti-dynamic-registration 0.1.2's LtiMessage.to_dict iterates the dict's keys
    # as pairs and fails; the same pruning, done right.
    def to_dict(self) -> dict:
        return {k: v for k, v in vars(self).items() if v}


def tool_registration(request: HttpRequest, *, name: str) -> dict:
    """What the tool asks a platform to register (LTI Dynamic Registration 1.0)."""
    launch_url = request.build_absolute_uri(reverse("identity_lti_launch"))
    configuration = LmsLtiToolConfiguration(
        domain=request.get_host(),
        target_link_uri=launch_url,
        claims=["iss", "sub", "name", "given_name", "family_name", "email"],
        messages=[
            ToolMessage(type="LtiResourceLinkRequest", target_link_uri=launch_url, label=name),
            ToolMessage(
                type="LtiDeepLinkingRequest",
                target_link_uri=launch_url,
                label=name,
                placements=["ContentArea"],
                roles=[INSTRUCTOR],
            ),
        ],
        description=_("A tutor whose every answer a teacher checks before the student sees it."),
    )
    return LmsLtiRegistration(
        client_name=name,
        jwks_uri=request.build_absolute_uri(reverse("identity_lti_jwks")),
        initiate_login_uri="",  # set once the registration's address is known
        target_link_uri=launch_url,
        scopes=[NRPS_SCOPE],
        lti_tool_configuration=configuration,
    ).to_dict()


def _http_refusal(what: str, error: Exception) -> SignInRefused:
    return SignInRefused(
        "platform_down",
        _("The learning platform did not answer. Try again."),
        detail=_("%(what)s failed (%(error)s).") % {"what": what, "error": str(error)[:160]},
    )


def platform_configuration(openid_configuration_url: str, registration_token: str) -> dict:
    """The platform's OpenID configuration, fetched with its one-time registration token."""
    try:
        response = requests.get(
            openid_configuration_url,
            headers={"Authorization": f"Bearer {registration_token}"},
            timeout=settings.IDENTITY_HTTP_TIMEOUT_SECONDS,
        )
        response.raise_for_status()
        config = response.json()
    except (requests.RequestException, ValueError) as error:
        raise _http_refusal(_("Reading the platform's configuration"), error) from error
    issuer = str(config.get("issuer", "")) if isinstance(config, dict) else ""
    if not issuer or not openid_configuration_url.startswith(issuer):
        raise SignInRefused(
            "issuer",
            _("The learning platform's configuration does not match its address."),
            detail=_("The configuration at %(url)s names the issuer %(issuer)s.")
            % {"url": openid_configuration_url[:200], "issuer": issuer[:200] or "?"},
        )
    for field in ("authorization_endpoint", "token_endpoint", "jwks_uri", "registration_endpoint"):
        if not config.get(field):
            raise SignInRefused(
                "misconfigured",
                _("The learning platform's configuration is incomplete."),
                detail=_("The platform's configuration has no %(field)s.") % {"field": field},
            )
    return config


def register_with_platform(config: dict, registration_token: str, payload: dict) -> tuple[str, str]:
    """Send the tool's registration; returns (client ID, deployment ID) from the platform."""
    try:
        response = requests.post(
            config["registration_endpoint"],
            json=payload,
            headers={"Authorization": f"Bearer {registration_token}"},
            timeout=settings.IDENTITY_HTTP_TIMEOUT_SECONDS,
        )
        response.raise_for_status()
        answer = response.json()
    except (requests.RequestException, ValueError) as error:
        raise _http_refusal(_("Registering with the platform"), error) from error
    tool_configuration = answer.get("https://purl.imsglobal.org/spec/lti-tool-configuration") or {}
    client_id = str(answer.get("client_id", ""))
    if not client_id:
        raise SignInRefused(
            "misconfigured",
            _("The learning platform did not accept the registration."),
            detail=_("The platform's answer had no client_id."),
        )
    return client_id, str(tool_configuration.get("deployment_id", ""))


# Login initiation and launch


class ToolConfig(DjangoToolConfig):
    """django-lti's lookup of registrations and deployments (an unknown deployment is kept,
    inactive, so that a school admin can see it and turn it on)."""

    def find_registration_by_params(self, iss: str, client_id: str, *args: object, **kwargs: object) -> object:
        tool_key()  # django-lti's registration needs a tool key, even before the JWKS was read
        return super().find_registration_by_params(iss, client_id, *args, **kwargs)


def login_redirect(request: HttpRequest, registration_uuid: str) -> HttpResponse:
    """The redirect to the platform's authorization address that answers an OIDC login
    initiation (pylti1p3 sets its state cookie on it)."""
    oidc_login = DjangoOIDCLogin(request, ToolConfig(registration_uuid), launch_data_storage=_storage())
    target = request.GET.get("target_link_uri") or request.POST.get("target_link_uri")
    if not target:
        raise SignInRefused(
            "bad_request", _("The learning platform's request is incomplete."), detail=_("No target_link_uri.")
        )
    if urlsplit(target).netloc != request.get_host():
        raise SignInRefused(
            "bad_request",
            _("The learning platform asked to open another site."),
            detail=_("The target_link_uri points at another host."),
        )
    try:
        return oidc_login.redirect(target)
    except LtiException as error:
        raise SignInRefused(
            "unknown_platform",
            _("This learning platform is not registered with the tutor. Ask the school admin to register it."),
            detail=_("A login came from a platform or client ID that is not registered (%(error)s).")
            % {"error": str(error)[:120]},
        ) from error


class PlatformLaunch(DjangoMessageLaunch):
    """pylti1p3's launch, with a nonce used once and a little leeway for clocks."""

    def validate_nonce(self) -> DjangoMessageLaunch:
        nonce = self._get_jwt_body().get("nonce")
        if not nonce:
            raise LtiException('"nonce" is empty')
        storage = self._session_service.data_storage
        key = storage._prepare_key(self._session_service._get_key("nonce", nonce))
        # Redis DEL is atomic: of two launches with the same nonce, one deletes it.
        if not storage._get_cache().delete(key):
            raise LtiException("Invalid Nonce")
        return self

    def validate_jwt_signature(self) -> DjangoMessageLaunch:
        id_token = self._get_id_token()
        public_key, key_alg = self.get_public_key()
        try:
            jwt.decode(
                id_token,
                public_key,
                algorithms=[key_alg],
                options={"verify_aud": False, "require": ["exp", "iat"]},  # aud is checked by registration
                leeway=settings.IDENTITY_CLOCK_LEEWAY_SECONDS,
            )
        except jwt.ExpiredSignatureError as error:
            raise LtiException("expired: " + str(error)) from error
        except jwt.ImmatureSignatureError as error:
            raise LtiException("not yet valid: " + str(error)) from error
        except jwt.InvalidTokenError as error:
            raise LtiException("Can't decode id_token: " + str(error)) from error
        return self


def _launch_refusal(error: LtiException) -> SignInRefused:
    text = str(error)
    leeway = settings.IDENTITY_CLOCK_LEEWAY_SECONDS
    known = [
        (
            "State not found",
            "state",
            _(
                "The launch came back without this browser's state: cookies are blocked in "
                "the platform's frame, or the launch was replayed."
            ),
        ),
        ("Missing", "cookies", _("The launch came back without this browser's cookies (blocked in the frame).")),
        ("Invalid Nonce", "replay", _("The launch's nonce was already used or never issued: a replayed launch.")),
        (
            "expired",
            "expired",
            _(
                "The launch token had expired, even allowing %(leeway)d seconds: check both clocks "
                "(NTP), or the launch was replayed."
            )
            % {"leeway": leeway},
        ),
        (
            "not yet valid",
            "clock_skew",
            _(
                "The launch token was issued in the future: the platform's clock is ahead "
                "of this server's by more than %(leeway)d seconds."
            )
            % {"leeway": leeway},
        ),
        (
            "Registration not found",
            "unknown_platform",
            _("A launch came from an issuer or client ID that is not registered."),
        ),
        ("Client id not registered", "unknown_platform", _("A launch came for a client ID that is not registered.")),
        (
            "Unable to find public key",
            "signature",
            _("The launch was signed with a key the platform does not publish."),
        ),
        ("Can't decode id_token", "signature", _("The launch token's signature could not be verified.")),
        ("Unable to find deployment", "unknown_deployment", _("The launch named an unknown deployment.")),
    ]
    found = next(((reason, detail) for needle, reason, detail in known if needle in text), None)
    reason, detail = found or ("bad_launch", _("The launch was not valid (%(error)s).") % {"error": text[:160]})
    return SignInRefused(
        reason, _("The tutor could not open from the learning platform: the launch was refused."), detail=detail
    )


def launch_validate(request: HttpRequest) -> LtiLaunch:
    """The verified launch (django-lti's wrapper), or SignInRefused."""
    message_launch = PlatformLaunch(request, ToolConfig(), launch_data_storage=_storage())
    try:
        message_launch.validate()
    except LtiException as error:
        raise _launch_refusal(error) from error
    except (requests.RequestException, ValueError) as error:
        raise _http_refusal(_("Reading the platform's keys"), error) from error
    return LtiLaunch(message_launch)


def registration_named_by(request: HttpRequest) -> LtiRegistration | None:
    """The registration a (not yet verified) launch or login names, to show errors in its frame."""
    issuer, client_id = request.POST.get("iss") or request.GET.get("iss"), None
    token = request.POST.get("id_token")
    if token:
        try:
            body = jwt.decode(token, options={"verify_signature": False})
            issuer = body.get("iss")
            aud = body.get("aud")
            client_id = aud[0] if isinstance(aud, list) and aud else aud
        except jwt.InvalidTokenError:
            return None
    registrations = LtiRegistration.objects.filter(is_active=True).select_related("school_platform")
    found = registrations.filter(issuer=issuer, client_id=client_id) if client_id else None
    if found is None or not found.exists():
        # By client ID alone: a platform whose address (issuer) changed is still shown its errors.
        found = registrations.filter(client_id=client_id) if client_id else registrations.filter(issuer=issuer)
    return found.first() if issuer or client_id else None


# Deep linking and rosters


def deep_link_response_jwt(
    platform: LtiPlatform, deployment_id: str, settings_claim: dict, *, title: str, url: str, custom: dict
) -> str:
    """The signed answer that tells the platform which activity to add."""
    resource = DeepLinkResource().set_url(url).set_title(title).set_custom_params(custom)
    deep_link = DeepLink(signing_registration(platform.registration), deployment_id, settings_claim)
    return deep_link.get_response_jwt([resource])


def roster_fetch(context: LtiContext) -> list[dict]:
    """Everyone the course lists (NRPS, every page), or SignInRefused."""
    if not context.memberships_url:
        raise SignInRefused(
            "no_roster",
            _("This course does not share its roster."),
            detail=_(
                "The platform sent no Names and Role Provisioning address for this course: turn on "
                "“Share the roster” (Moodle: “IMS LTI Names and Role Provisioning”) for the tool."
            ),
        )
    service = NamesRolesProvisioningService(
        ServiceConnector(signing_registration(context.deployment.registration), requests_session=TimeoutSession()),
        {"context_memberships_url": context.memberships_url},
    )
    try:
        return list(service.get_members())
    except LtiException as error:
        raise SignInRefused(
            "roster_refused",
            _("The learning platform refused to share the course's roster."),
            detail=_(
                "The roster could not be read (%(error)s): the platform refused the tool's token, or the "
                "tool is not allowed to read rosters."
            )
            % {"error": str(error)[:160]},
        ) from error
    except (requests.RequestException, ValueError) as error:
        raise _http_refusal(_("Reading the course's roster"), error) from error
