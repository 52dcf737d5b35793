"""Fixtures for the sign-in tests: each protocol's real peer, and the school's sign-in set up
for it."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.test import Client
from django.urls import reverse

from classrooms.identity.models import IdentityProvider, SchoolSignIn
from tests.classrooms.identity import peers

SECRET = "TUTOR_IDP_PROCONNECT_CLIENT_SECRET"


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


@pytest.fixture
def oidc_peer():
    with peers.openid_provider() as provider:
        yield provider


def oidc_sign_in_for(peer, school, monkeypatch, *, key="proconnect", name="ProConnect", **rules) -> SchoolSignIn:
    """A shared OpenID Connect service registered at `peer`, turned on for `school`."""
    redirect_uri = "http://testserver" + reverse("identity_oidc_callback", kwargs={"key": key})
    client_id, secret = peer.register_client(redirect_uri)
    provider = IdentityProvider.objects.create(
        key=key, name=name, protocol=IdentityProvider.Protocol.OIDC, issuer=peer.issuer, client_id=client_id
    )
    monkeypatch.setenv(provider.secret_variable, secret)
    return SchoolSignIn.objects.create(school=school, provider=provider, **rules)


@pytest.fixture
def proconnect(oidc_peer, school, monkeypatch):
    return oidc_sign_in_for(oidc_peer, school, monkeypatch)


def oidc_flow(client: Client, peer, sign_in: SchoolSignIn, sub: str, *, query: str = "", **claims):
    """A person signs in through the school's button; returns our callback's response."""
    if claims:
        peer.set_person(sub, **claims)
    start = client.get(reverse("identity_sign_in", args=[sign_in.id]) + query)
    assert start.status_code == 302, start.content[:300]
    back = peer.sign_in(start["Location"], sub)
    assert back.startswith("http://testserver/"), back
    return client.get(path_of(back))


def signed_in_user(client: Client):
    from django.contrib.auth import get_user_model

    user_id = client.session.get("_auth_user_id")
    return get_user_model().objects.get(pk=user_id) if user_id else None
