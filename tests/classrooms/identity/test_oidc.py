"""Signing in with a school's OpenID Connect provider, against a real provider on loopback
(oidc-provider-mock: authorization code flow, signed ID tokens, JWKS, userinfo, logout)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests
from django.test import Client
from django.urls import reverse

from classrooms.identity.models import ExternalIdentity, SignInProblem
from classrooms.models import Membership, User
from classrooms.selectors import is_staff_member
from tests.classrooms.identity import peers
from tests.classrooms.identity.conftest import oidc_flow, oidc_sign_in_for, path_of, signed_in_user

PUPIL = {"given_name": "Léa", "family_name": "Martin", "email": "lea.martin@example.org"}


@pytest.mark.django_db
def test_a_student_of_the_roster_signs_in_and_lands_in_their_classes(oidc_peer, proconnect, student, classroom):
    student.student_number = "INE-0001"
    student.save()
    proconnect.student_number_claim = "student_number"
    proconnect.save()
    client = Client()
    answer = oidc_flow(client, oidc_peer, proconnect, "sub-lea", student_number="INE-0001", **PUPIL)
    assert answer.status_code == 302
    assert signed_in_user(client) == student
    assert client.get(client.get(answer["Location"])["Location"]).context["classrooms"][0] == classroom
    # The next time, the provider's subject alone finds the account (no student number needed).
    oidc_peer.set_person("sub-lea", **PUPIL)
    again = Client()
    assert oidc_flow(again, oidc_peer, proconnect, "sub-lea").status_code == 302
    assert signed_in_user(again) == student
    assert ExternalIdentity.objects.get(subject="sub-lea").user == student


@pytest.mark.django_db
def test_new_people_get_an_account_only_where_the_school_allows_it(oidc_peer, proconnect, school):
    refused = oidc_flow(Client(), oidc_peer, proconnect, "sub-new", **PUPIL)
    assert refused.status_code == 403
    assert "no account linked" in refused.content.decode()
    assert not User.objects.filter(last_name="Martin").exists()
    assert SignInProblem.objects.filter(school=school, reason="no_account").exists()

    proconnect.create_accounts = True
    proconnect.save()
    client = Client()
    assert oidc_flow(client, oidc_peer, proconnect, "sub-new", **PUPIL).status_code == 302
    person = signed_in_user(client)
    assert (person.school, person.first_name, person.email) == (school, "Léa", "lea.martin@example.org")
    assert not person.has_usable_password()
    assert not is_staff_member(person)  # no rule: a student


@pytest.mark.django_db
def test_the_schools_rule_makes_teachers_and_nothing_else_does(oidc_peer, proconnect, student):
    proconnect.create_accounts = True
    proconnect.teacher_claim = "eduPersonAffiliation"
    proconnect.teacher_values = "teacher, staff"
    proconnect.save()
    teacher_client = Client()
    oidc_flow(
        teacher_client,
        oidc_peer,
        proconnect,
        "sub-t",
        eduPersonAffiliation=["member", "Teacher"],
        given_name="Marie",
        family_name="Curie",
    )
    assert is_staff_member(signed_in_user(teacher_client))
    # Claims the school did not configure promote nobody.
    other = Client()
    oidc_flow(
        other,
        oidc_peer,
        proconnect,
        "sub-s",
        roles=["teacher"],
        groups=["teachers"],
        eduPersonAffiliation="student",
        given_name="Tom",
        family_name="Pouce",
    )
    assert not is_staff_member(signed_in_user(other))
    # A student of a class is never turned into a teacher by a claim, even the configured one.
    ExternalIdentity.objects.create(provider=proconnect.provider, subject="sub-sam", user=student)
    sam = Client()
    oidc_flow(sam, oidc_peer, proconnect, "sub-sam", eduPersonAffiliation="teacher", given_name="Sam")
    assert signed_in_user(sam) == student
    assert not Membership.objects.filter(user=student).exclude(role="student").exists()
    assert ExternalIdentity.objects.get(subject="sub-sam").role == "student"


@pytest.mark.django_db
def test_signing_out_also_ends_the_providers_session(oidc_peer, proconnect, student):
    ExternalIdentity.objects.create(provider=proconnect.provider, subject="sub-sam", user=student)
    client = Client()
    oidc_flow(client, oidc_peer, proconnect, "sub-sam", **PUPIL)
    out = client.post(reverse("logout"))
    assert out.status_code == 302
    assert out["Location"].startswith(oidc_peer.issuer + "/oauth2/end_session?")
    assert "id_token_hint=" in out["Location"]
    assert signed_in_user(client) is None
    # The provider asks to confirm, then sends the browser back to our sign-in page.
    page = requests.get(out["Location"], timeout=10)
    action, fields = peers.form_of(page.text)
    back = requests.post(requests.compat.urljoin(page.url, action), data=fields, allow_redirects=False, timeout=10)
    assert back.headers["Location"].startswith("http://testserver" + reverse("login"))


@pytest.mark.django_db
def test_a_signed_in_person_links_the_service_to_their_account(oidc_peer, proconnect, teacher):
    client = Client()
    client.force_login(teacher)
    answer = oidc_flow(client, oidc_peer, proconnect, "sub-theo", query="?link=1", given_name="Théo")
    assert answer["Location"] == reverse("identity_sign_in_methods")
    assert ExternalIdentity.objects.get(subject="sub-theo").user == teacher
    fresh = Client()
    oidc_flow(fresh, oidc_peer, proconnect, "sub-theo")
    assert signed_in_user(fresh) == teacher


# Bad input: each fails closed, says why, logs the reason, and creates no account.


def _no_one_signed_in(client, answer, reason, school):
    """Refused, nobody signed in, and the reason kept for the school admin (when the
    attempt can be traced to a school: a forged state cannot, and is only logged)."""
    assert answer.status_code in (403, 502), answer.status_code
    assert signed_in_user(client) is None
    if school is not None:
        assert SignInProblem.objects.filter(school=school, reason=reason).exists(), list(
            SignInProblem.objects.values_list("reason", flat=True)
        )


@pytest.mark.django_db
def test_a_wrong_or_used_state_is_refused(oidc_peer, proconnect, school, caplog):
    proconnect.create_accounts = True
    proconnect.save()
    oidc_peer.set_person("sub-x", **PUPIL)
    client = Client()
    start = client.get(reverse("identity_sign_in", args=[proconnect.id]))
    back = path_of(oidc_peer.sign_in(start["Location"], "sub-x"))
    forged = back.replace("state=", "state=forged")
    _no_one_signed_in(client, client.get(forged), "state", None)
    assert "sign-in refused: state" in caplog.text
    assert client.get(back).status_code == 302  # the real answer still works once
    client.logout()
    _no_one_signed_in(client, client.get(back), "state", None)  # and never twice
    assert User.objects.filter(last_name="Martin").count() == 1


@pytest.mark.django_db
def test_a_mismatched_nonce_is_refused(oidc_peer, proconnect, school):
    proconnect.create_accounts = True
    proconnect.save()
    oidc_peer.set_person("sub-x", **PUPIL)
    client = Client()
    start = client.get(reverse("identity_sign_in", args=[proconnect.id]))
    back = oidc_peer.sign_in(start["Location"], "sub-x")
    session = client.session
    for record in session["oidc_states"].values():
        record["nonce"] = "another-nonce"  # the answer belongs to another attempt
    session.save()
    _no_one_signed_in(client, client.get(path_of(back)), "nonce", school)
    assert not User.objects.filter(last_name="Martin").exists()


@pytest.mark.django_db
def test_a_token_signed_by_another_key_is_refused(oidc_peer, proconnect, school):
    from django.core.cache import caches

    from classrooms.identity import oidc

    proconnect.create_accounts = True
    proconnect.save()
    with peers.openid_provider() as impostor:
        # The provider's published keys are swapped for another provider's.
        document = oidc.discovery(proconnect.provider)
        caches["identity"].set(
            oidc.discovery_cache_key(proconnect.provider), {**document, "jwks_uri": impostor.issuer + "/jwks"}, 60
        )
        client = Client()
        answer = oidc_flow(client, oidc_peer, proconnect, "sub-x", **PUPIL)
    _no_one_signed_in(client, answer, "signature", school)
    assert not User.objects.filter(last_name="Martin").exists()


@pytest.mark.django_db
def test_a_missing_claim_creates_no_account(oidc_peer, proconnect, school):
    proconnect.create_accounts = True
    proconnect.save()
    client = Client()
    answer = oidc_flow(client, oidc_peer, proconnect, "sub-nameless", email="nameless@example.org")
    _no_one_signed_in(client, answer, "missing_claim", school)
    assert not User.objects.filter(email="nameless@example.org").exists()


@pytest.mark.django_db
def test_a_provider_that_is_down_is_said_so(proconnect, school):
    proconnect.provider.issuer = f"http://127.0.0.1:{peers.free_port()}"
    proconnect.provider.save()
    client = Client()
    answer = client.get(reverse("identity_sign_in", args=[proconnect.id]))
    assert answer.status_code == 502
    assert "not answering" in answer.content.decode()
    assert SignInProblem.objects.filter(school=school, reason="provider_down").exists()


@pytest.mark.django_db
def test_two_providers_asserting_the_same_email_for_different_people(oidc_peer, proconnect, school, monkeypatch):
    proconnect.create_accounts = True
    proconnect.save()
    first = Client()
    oidc_flow(first, oidc_peer, proconnect, "sub-1", **PUPIL)
    lea = signed_in_user(first)
    with peers.openid_provider() as other_peer:
        other = oidc_sign_in_for(other_peer, school, monkeypatch, key="academie", name="Académie", create_accounts=True)
        client = Client()
        answer = oidc_flow(client, other_peer, other, "sub-2", **PUPIL)
    _no_one_signed_in(client, answer, "email_taken", school)
    assert User.objects.filter(email__iexact=PUPIL["email"]).count() == 1
    assert not ExternalIdentity.objects.filter(subject="sub-2").exists()
    assert lea.external_identities.count() == 1


@pytest.mark.django_db
def test_an_expired_id_token_is_refused_with_the_clocks_named(school, monkeypatch):
    """This server's clock runs two minutes ahead of the provider's (beyond the 60 s of
    leeway): the provider's short-lived ID token arrives already expired."""
    import datetime as real

    import jwt.api_jwt
    from oidc_provider_mock import run_server_in_thread

    class AheadClock(real.datetime):
        @classmethod
        def now(cls, tz=None):
            return real.datetime.now(tz) + real.timedelta(seconds=120)

    with run_server_in_thread(require_client_registration=True, access_token_max_age=timedelta(seconds=30)) as server:
        peer = peers.OpenIDProvider(server)
        sign_in = oidc_sign_in_for(peer, school, monkeypatch, create_accounts=True)
        peer.set_person("sub-late", **PUPIL)
        client = Client()
        start = client.get(reverse("identity_sign_in", args=[sign_in.id]))
        back = peer.sign_in(start["Location"], "sub-late")
        monkeypatch.setattr(jwt.api_jwt, "datetime", AheadClock)
        answer = client.get(path_of(back))
    _no_one_signed_in(client, answer, "expired", school)
    assert "clock" in SignInProblem.objects.get(reason="expired").detail
    assert not User.objects.filter(last_name="Martin").exists()
