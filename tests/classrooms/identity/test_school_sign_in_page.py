"""The school admin's sign-in page: adding services, the school's rules, the "Test" button
(against a real OpenID Connect provider), and the login page's buttons."""

from __future__ import annotations

import pytest
from django.urls import reverse

from classrooms.identity.models import IdentityProvider, SchoolSignIn
from classrooms.models import AuditEntry, School


@pytest.mark.django_db
def test_the_admin_adds_the_schools_ent_and_sets_its_rules(as_user, school_admin, school):
    client = as_user(school_admin)
    answer = client.post(
        reverse("identity_school_sign_in_add"),
        {"protocol": "cas", "name": "Mon ENT", "slug": "ent", "server_url": "https://ent.example.fr/cas"},
    )
    sign_in = SchoolSignIn.objects.get(school=school)
    assert answer["Location"] == reverse("identity_school_sign_in_rules", kwargs={"sign_in_id": sign_in.id})
    assert sign_in.provider.key == f"s{school.id}-ent"  # a school's keys carry its number
    assert not sign_in.create_accounts  # new people get no account until the school says so
    client.post(
        reverse("identity_school_sign_in_rules", kwargs={"sign_in_id": sign_in.id}),
        {
            "enabled": "on",
            "create_accounts": "on",
            "teacher_claim": "ENTPersonProfils",
            "teacher_values": "National_ENS",
        },
    )
    sign_in.refresh_from_db()
    assert (sign_in.create_accounts, sign_in.teacher_values) == (True, "National_ENS")
    assert AuditEntry.objects.filter(school=school, action="identity.rules").exists()
    page = client.get(reverse("identity_school_sign_in"))
    assert "Mon ENT" in page.content.decode()


@pytest.mark.django_db
def test_a_shared_service_is_turned_on_by_each_school_for_itself(as_user, school_admin, other_admin, school):
    shared = IdentityProvider.objects.create(
        key="proconnect", name="ProConnect", protocol="oidc", issuer="https://auth.example", client_id="x"
    )
    as_user(school_admin).post(reverse("identity_school_sign_in_add"), {"shared": shared.id})
    assert SchoolSignIn.objects.filter(provider=shared).count() == 1
    assert SchoolSignIn.objects.get(provider=shared).school == school
    assert "ProConnect" in as_user(other_admin).get(reverse("identity_school_sign_in")).content.decode()


@pytest.mark.django_db
def test_testing_a_provider_says_what_is_wrong_in_plain_words(as_user, school_admin, school, oidc_peer, monkeypatch):
    from classrooms.identity import services

    sign_in = services.school_provider_create(
        actor=school_admin,
        school=school,
        protocol="oidc",
        name="Keycloak",
        slug="kc",
        issuer=oidc_peer.issuer,
        client_id="tutor",
    )
    client = as_user(school_admin)
    client.post(reverse("identity_school_sign_in_test", kwargs={"sign_in_id": sign_in.id}))
    page = client.get(reverse("identity_school_sign_in_rules", kwargs={"sign_in_id": sign_in.id})).content.decode()
    assert f"TUTOR_IDP_S{school.id}_KC_CLIENT_SECRET" in page  # the secret is missing: which variable to set
    assert "http://testserver/accounts/oidc/" in page  # the redirect URI to register
    assert "names the right issuer" in page
    assert "clock agrees" in page
    monkeypatch.setenv(sign_in.provider.secret_variable, "s3cret")
    sign_in.provider.issuer = oidc_peer.issuer + "/realms/wrong"
    sign_in.provider.save()
    client.post(reverse("identity_school_sign_in_test", kwargs={"sign_in_id": sign_in.id}))
    page = client.get(reverse("identity_school_sign_in_rules", kwargs={"sign_in_id": sign_in.id})).content.decode()
    assert "Found in the server" in page
    assert "cannot be read" in page


@pytest.mark.django_db
def test_the_login_page_shows_the_buttons_of_the_schools_own_services(client, school, other_school):
    ent = IdentityProvider.objects.create(key="s1-ent", name="Mon ENT", protocol="cas", server_url="https://e/cas")
    SchoolSignIn.objects.create(school=school, provider=ent)
    page = client.get(reverse("login")).content.decode()
    assert "Sign in with Mon ENT" in page  # the only school with buttons
    other = IdentityProvider.objects.create(key="s2-ent", name="Autre ENT", protocol="cas", server_url="https://o/cas")
    SchoolSignIn.objects.create(school=other_school, provider=other)
    page = client.get(reverse("login")).content.decode()
    assert "Sign in with" not in page  # two schools: the page needs the school's own link
    page = client.get(reverse("login") + f"?school={other_school.id}").content.decode()
    assert "Sign in with Autre ENT" in page and "Mon ENT" not in page
    SchoolSignIn.objects.filter(school=other_school).update(enabled=False)
    assert "Autre ENT" not in client.get(reverse("login") + f"?school={other_school.id}").content.decode()


@pytest.mark.django_db
def test_a_school_cannot_name_another_schools_secret(school_admin, school):
    from classrooms import services as classroom_services
    from classrooms.identity import services

    with pytest.raises(classroom_services.ActionRefused):
        services.school_provider_create(
            actor=school_admin,
            school=School.objects.create(name="Elsewhere"),
            protocol="cas",
            name="X",
            slug="x",
            server_url="https://x",
        )
    sign_in = services.school_provider_create(
        actor=school_admin,
        school=school,
        protocol="oidc",
        name="PC",
        slug="proconnect",
        issuer="https://i",
        client_id="c",
    )
    assert sign_in.provider.secret_variable != "TUTOR_IDP_PROCONNECT_CLIENT_SECRET"
