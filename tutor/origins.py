"""Which pages may open a socket: the site's own, by scheme, host and port.

Channels' AllowedHostsOriginValidator compares host names only, so a page served from
another port of the same machine (http://127.0.0.1:9999 for a site on :8100) could open
sockets with the visitor's cookies. This check follows the rules of Django's CSRF origin
check for a POST: the Origin must be the request's own origin (its Host, which must be
in ALLOWED_HOSTS, with the scheme it came in on), or one of CSRF_TRUSTED_ORIGINS.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host

ASGIApp = Callable[[dict, Callable, Callable], Awaitable[None]]
DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(value: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an origin such as https://school.example:8443; None if unreadable."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if scheme not in DEFAULT_PORTS or not host:
        return None
    return scheme, host, port or DEFAULT_PORTS[scheme]


def _scheme(scope: dict, headers: dict[bytes, bytes]) -> str:
    """The scheme the page was served with: the socket's own, or what the TLS proxy says
    (SECURE_PROXY_SSL_HEADER), as Django's request.is_secure() decides it."""
    proxy = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy:
        header, secure_value = proxy
        name = header.removeprefix("HTTP_").replace("_", "-").lower().encode("latin-1")
        if name in headers:
            forwarded = headers[name].decode("latin-1").split(",")[0].strip()
            return "https" if forwarded == secure_value else "http"
    return "https" if scope.get("scheme") in ("wss", "https") else "http"


def origin_allowed(scope: dict) -> bool:
    """May a page of this Origin open this socket? Browsers always send an Origin with a
    socket; a socket without one is refused."""
    headers = dict(scope.get("headers") or [])
    origin = _origin(headers.get(b"origin", b"").decode("latin-1"))
    if origin is None:
        return False
    scheme, host, port = origin
    for trusted in settings.CSRF_TRUSTED_ORIGINS:
        wildcard = "://*." in trusted  # https://*.school.example: the domain and its subdomains
        allowed = _origin(trusted.replace("://*.", "://", 1))
        if allowed is None or (allowed[0], allowed[2]) != (scheme, port):
            continue
        if host == allowed[1] or (wildcard and host.endswith("." + allowed[1])):
            return True
    own = headers.get(b"host", b"").decode("latin-1").lower()
    own_host, own_port = split_domain_port(own)
    if not own_host or not validate_host(own_host, settings.ALLOWED_HOSTS):
        return False
    own_scheme = _scheme(scope, headers)
    own_origin = (own_scheme, own_host.strip("[]"), int(own_port or DEFAULT_PORTS[own_scheme]))
    return (scheme, host, port) == own_origin


class SiteOriginValidator:
    """ASGI middleware: refuses (403) a socket opened from a page of another origin."""

    def __init__(self, application: ASGIApp):
        self.application = application

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "websocket" and not origin_allowed(scope):
            return await WebsocketDenier()(scope, receive, send)
        return await self.application(scope, receive, send)
