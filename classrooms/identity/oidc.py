"""OpenID Connect, with mozilla-django-oidc, for several providers at once.

mozilla-django-oidc reads one provider from settings; here each `IdentityProvider` row
is one provider, and its endpoints come from the provider's discovery document. The
library does the code exchange, the JWKS lookup and the userinfo call; this module adds
what it leaves out: the ID token's issuer and audience are checked, with a little leeway
for clocks, and every failure becomes a `SignInRefused` that says what went wrong.

The flow: `authorization_url` (state, nonce and PKCE kept in the session, one set per
attempt) → the provider → `claims_from_callback` (state used once, code exchanged, ID
token verified, userinfo merged) → `services.sign_in_resolve`.
"""

from __future__ import annotations

import hashlib
import time
from urllib.parse import urlencode

import jwt
import requests
from django.conf import settings
from django.core.cache import caches
from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest
from django.urls import reverse
from django.utils.crypto import get_random_string
from django.utils.translation import gettext as _
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.utils import add_state_and_verifier_and_nonce_to_session, generate_code_challenge

from classrooms.identity.errors import SignInRefused
from classrooms.identity.models import IdentityProvider, SchoolSignIn

SIGNING_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
DISCOVERY_SECONDS = 3600
FLOWS_SESSION_KEY = "identity_oidc_flows"  # state -> which sign-in, who to link, where to go next
SESSION_SIGNED_IN_VIA = "identity_via"  # how this session signed in, for signing out there too


def _cache():
    return caches["identity"]


def down(provider: IdentityProvider, error: Exception) -> SignInRefused:
    return SignInRefused(
        "provider_down",
        _("%(service)s is not answering right now. Try again in a few minutes.") % {"service": provider.name},
        detail=_("The provider could not be reached (%(error)s).") % {"error": type(error).__name__},
    )


def discovery_cache_key(provider: IdentityProvider) -> str:
    return "oidc-discovery-" + hashlib.sha256(provider.issuer.encode()).hexdigest()[:32]


def discovery(provider: IdentityProvider, *, fresh: bool = False) -> dict:
    """The provider's discovery document (cached for an hour), checked against its issuer."""
    key = discovery_cache_key(provider)
    document = None if fresh else _cache().get(key)
    if document is None:
        url = provider.issuer.rstrip("/") + "/.well-known/openid-configuration"
        try:
            response = requests.get(
                url, timeout=settings.IDENTITY_HTTP_TIMEOUT_SECONDS, verify=settings.OIDC_VERIFY_SSL
            )
            response.raise_for_status()
            document = response.json()
        except (requests.RequestException, ValueError) as error:
            raise down(provider, error) from error
        if not isinstance(document, dict) or document.get("issuer", "").rstrip("/") != provider.issuer.rstrip("/"):
            raise SignInRefused(
                "issuer",
                _("%(service)s is not set up correctly. Tell your school admin.") % {"service": provider.name},
                detail=_("The provider's discovery document names another issuer (%(found)s) than the one set here.")
                % {"found": str(document.get("issuer", "?"))[:100] if isinstance(document, dict) else "?"},
            )
        for field in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not document.get(field):
                raise SignInRefused(
                    "misconfigured",
                    _("%(service)s is not set up correctly. Tell your school admin.") % {"service": provider.name},
                    detail=_("The provider's discovery document has no %(field)s.") % {"field": field},
                )
        _cache().set(key, document, DISCOVERY_SECONDS)
    return document


def callback_path(provider: IdentityProvider) -> str:
    return reverse("identity_oidc_callback", kwargs={"key": provider.key})


def secret_or_refuse(provider: IdentityProvider) -> str:
    secret = provider.client_secret()
    if not secret:
        raise SignInRefused(
            "misconfigured",
            _("Signing in with %(service)s is not finished being set up on this server. Tell your school admin.")
            % {"service": provider.name},
            detail=_("The server has no client secret: set %(variable)s (or %(variable)s_FILE).")
            % {"variable": provider.secret_variable},
        )
    return secret


def authorization_url(request: HttpRequest, sign_in: SchoolSignIn, *, next_url: str, link_user_id: int | None) -> str:
    """Where to send the browser to sign in; remembers the attempt in the session."""
    provider = sign_in.provider
    secret_or_refuse(provider)
    document = discovery(provider)
    state = get_random_string(32)
    nonce = get_random_string(32)
    verifier = get_random_string(64)
    params = {
        "response_type": "code",
        "scope": provider.scopes or "openid email profile",
        "client_id": provider.client_id,
        "redirect_uri": request.build_absolute_uri(callback_path(provider)),
        "state": state,
        "nonce": nonce,
        "code_challenge": generate_code_challenge(verifier, "S256"),
        "code_challenge_method": "S256",
    }
    add_state_and_verifier_and_nonce_to_session(request, state, params, verifier)
    flows = request.session.get(FLOWS_SESSION_KEY) or {}
    if len(flows) >= 20:  # keep the session small: drop the oldest unfinished attempts
        for old in sorted(flows, key=lambda s: flows[s]["at"])[: len(flows) - 19]:
            flows.pop(old, None)
    flows[state] = {"sign_in": sign_in.id, "link": link_user_id, "next": next_url, "at": time.time()}
    request.session[FLOWS_SESSION_KEY] = flows
    return (
        document["authorization_endpoint"]
        + ("&" if "?" in document["authorization_endpoint"] else "?")
        + urlencode(params)
    )


def stale_state(provider_name: str) -> SignInRefused:
    return SignInRefused(
        "state",
        _("This sign-in has expired or was already used. Start again from the sign-in page."),
        detail=_(
            "A sign-in came back from %(service)s with a state this browser did not start (expired, used twice, or forged)."
        )
        % {"service": provider_name},
    )


def take_flow(request: HttpRequest, provider: IdentityProvider) -> tuple[dict, dict]:
    """The attempt this callback answers, removed from the session so it is used once.

    Returns (our flow record, mozilla-django-oidc's state record with nonce and verifier).
    """
    state = request.GET.get("state", "")
    flows = request.session.get(FLOWS_SESSION_KEY) or {}
    states = request.session.get("oidc_states") or {}
    flow = flows.pop(state, None) if state else None
    record = states.pop(state, None) if state else None
    request.session[FLOWS_SESSION_KEY] = flows
    request.session["oidc_states"] = states
    if flow is None or record is None:
        raise stale_state(provider.name)
    sign_in = SchoolSignIn.objects.select_related("provider", "school").filter(pk=flow["sign_in"]).first()
    # The answer must come back to the callback of the provider the attempt went to
    # (a mix-up between two providers is refused).
    if sign_in is None or sign_in.provider_id != provider.id:
        raise stale_state(provider.name)
    flow["sign_in_obj"] = sign_in
    return flow, record


class ProviderBackend(OIDCAuthenticationBackend):
    """mozilla-django-oidc's backend, for one provider, with the ID token fully checked."""

    def __init__(self, provider: IdentityProvider, document: dict, secret: str):
        self.provider = provider
        self.document = document
        self.OIDC_OP_TOKEN_ENDPOINT = document["token_endpoint"]
        self.OIDC_OP_USER_ENDPOINT = document.get("userinfo_endpoint") or ""
        self.OIDC_OP_JWKS_ENDPOINT = document["jwks_uri"]
        self.OIDC_RP_CLIENT_ID = provider.client_id
        self.OIDC_RP_CLIENT_SECRET = secret
        self.OIDC_RP_IDP_SIGN_KEY = None
        supported = document.get("id_token_signing_alg_values_supported") or ["RS256"]
        self.algorithms = [alg for alg in supported if alg in SIGNING_ALGORITHMS] or ["RS256"]
        self.OIDC_RP_SIGN_ALGO = self.algorithms[0]
        self.expect_claims = True

    def get_settings(self, attr: str, *args: object) -> object:
        if attr == "OIDC_TOKEN_USE_BASIC_AUTH":
            methods = self.document.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
            return "client_secret_post" not in methods
        if attr == "OIDC_ALLOW_UNSECURED_JWT":
            return False  # never accept alg "none"
        return super().get_settings(attr, *args)

    def _verify_jws(self, payload: bytes | str, key: object) -> dict:
        header = jwt.get_unverified_header(payload)
        if header.get("alg") not in self.algorithms:
            raise SuspiciousOperation("unexpected signing algorithm")
        options = {"require": ["exp", "iat", "sub"]} if self.expect_claims else {}
        return jwt.decode(
            payload,
            key,
            algorithms=self.algorithms,
            audience=self.provider.client_id,
            issuer=self.document["issuer"],
            leeway=settings.IDENTITY_CLOCK_LEEWAY_SECONDS,
            options=options,
        )

    def retrieve_matching_jwk(self, token: bytes | str) -> dict:
        """The provider's key for this token: by its `kid`, or the provider's only signing
        key when the token names none (mozilla-django-oidc 5.0 fails on a token without kid)."""
        response = requests.get(
            self.OIDC_OP_JWKS_ENDPOINT, timeout=settings.IDENTITY_HTTP_TIMEOUT_SECONDS, verify=settings.OIDC_VERIFY_SSL
        )
        response.raise_for_status()
        header = jwt.get_unverified_header(token)
        keys = [
            k
            for k in response.json().get("keys", [])
            if k.get("use", "sig") == "sig" and k.get("alg", header.get("alg")) == header.get("alg")
        ]
        if header.get("kid"):
            keys = [k for k in keys if k.get("kid") == header["kid"]]
        if len(keys) != 1:
            raise jwt.InvalidSignatureError("no key of the provider matches the token")
        return jwt.PyJWK(keys[0])

    def exchange(self, request: HttpRequest, code: str, nonce: str, verifier: str) -> tuple[str, dict, dict]:
        """(ID token, its verified claims, userinfo claims) for an authorization code."""
        payload = {
            "client_id": self.OIDC_RP_CLIENT_ID,
            "client_secret": self.OIDC_RP_CLIENT_SECRET,
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": request.build_absolute_uri(callback_path(self.provider)),
            "code_verifier": verifier,
        }
        token_info = self.get_token(payload)
        id_token = token_info.get("id_token")
        if not id_token:
            raise SuspiciousOperation("no id_token in the token response")
        self.expect_claims = True
        id_claims = self.verify_token(id_token, nonce=nonce)
        userinfo = {}
        if self.OIDC_OP_USER_ENDPOINT and token_info.get("access_token"):
            self.expect_claims = False  # a signed userinfo answer need not carry exp or iat
            userinfo = self.get_userinfo(token_info["access_token"], id_token, id_claims) or {}
        return id_token, id_claims, userinfo


def claims_from_callback(request: HttpRequest, provider: IdentityProvider, record: dict) -> tuple[str, dict, str]:
    """(subject, claims, ID token) from the provider's answer, verified; or SignInRefused."""
    if request.GET.get("error"):
        raise SignInRefused(
            "provider_error",
            _("%(service)s did not sign you in (%(error)s). Try again.")
            % {"service": provider.name, "error": request.GET["error"][:60]},
            detail=_(
                "The provider answered with the error “%(error)s”. A wrong redirect address gives "
                "“invalid_request” or “redirect_uri_mismatch”: register %(uri)s at the provider."
            )
            % {"error": request.GET["error"][:60], "uri": request.build_absolute_uri(callback_path(provider))},
        )
    code = request.GET.get("code", "")
    if not code:
        raise stale_state(provider.name)
    secret = secret_or_refuse(provider)
    backend = ProviderBackend(provider, discovery(provider), secret)
    try:
        id_token, id_claims, userinfo = backend.exchange(
            request, code, record.get("nonce"), record.get("code_verifier")
        )
    except requests.HTTPError as error:
        status = getattr(error.response, "status_code", "?")
        raise SignInRefused(
            "token_refused",
            _("%(service)s refused to finish signing you in. Start again.") % {"service": provider.name},
            detail=_(
                "The provider's token endpoint answered %(status)s: the code was used twice or expired, "
                "the client secret is wrong, or the redirect address is not the one registered (%(uri)s)."
            )
            % {"status": status, "uri": request.build_absolute_uri(callback_path(provider))},
        ) from error
    except requests.RequestException as error:
        raise down(provider, error) from error
    except jwt.ExpiredSignatureError as error:
        raise _clock_refusal(provider, "expired") from error
    except jwt.ImmatureSignatureError as error:
        raise _clock_refusal(provider, "not_yet_valid") from error
    except jwt.InvalidAudienceError as error:
        raise _token_refusal(provider, "audience", _("The ID token was issued for another client.")) from error
    except jwt.InvalidIssuerError as error:
        raise _token_refusal(provider, "issuer", _("The ID token was issued by another issuer.")) from error
    except jwt.MissingRequiredClaimError as error:
        raise _token_refusal(
            provider, "missing_claim", _("The ID token lacks the claim %(claim)s.") % {"claim": error.claim}
        ) from error
    except jwt.InvalidSignatureError as error:
        raise _token_refusal(
            provider, "signature", _("The ID token's signature does not match the provider's published keys.")
        ) from error
    except (jwt.InvalidTokenError, SuspiciousOperation) as error:
        reason = "nonce" if "Nonce" in str(error) else "signature"
        detail = (
            _("The ID token's nonce is not the one this sign-in sent (a replayed or mixed-up answer).")
            if reason == "nonce"
            else _("The ID token could not be verified (%(error)s).") % {"error": str(error)[:100]}
        )
        raise _token_refusal(provider, reason, detail) from error
    subject = str(id_claims.get("sub", ""))
    if userinfo.get("sub") not in (None, subject):
        raise _token_refusal(provider, "subject_mismatch", _("The userinfo answer is about another person."))
    claims = {**userinfo, **id_claims}
    return subject, claims, id_token


def _token_refusal(provider: IdentityProvider, reason: str, detail: str) -> SignInRefused:
    return SignInRefused(
        reason,
        _("%(service)s's answer could not be verified, so nobody was signed in. Start again.")
        % {"service": provider.name},
        detail=detail,
    )


def _clock_refusal(provider: IdentityProvider, reason: str) -> SignInRefused:
    return SignInRefused(
        reason,
        _("%(service)s's answer has expired. Start again.") % {"service": provider.name},
        detail=_(
            "The ID token was outside its validity period, even allowing %(leeway)d seconds: this server's "
            "clock or the provider's is wrong (check NTP), or the answer was replayed."
        )
        % {"leeway": settings.IDENTITY_CLOCK_LEEWAY_SECONDS},
    )


def logout_url(request: HttpRequest, provider: IdentityProvider, id_token: str, after: str) -> str | None:
    """RP-initiated logout at the provider, when it offers one; None otherwise."""
    try:
        endpoint = discovery(provider).get("end_session_endpoint")
    except SignInRefused:
        return None
    if not endpoint:
        return None
    params = {"id_token_hint": id_token, "post_logout_redirect_uri": after, "client_id": provider.client_id}
    return endpoint + ("&" if "?" in endpoint else "?") + urlencode(params)
