"""The tutor inside a platform's frame, and nowhere else: the frame policy and cookie
attributes change only for sessions an LTI launch opened."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from classrooms.identity.middleware import FRAME_SESSION_KEY

MOODLE = "https://moodle.example.org"


def _framed_client(user) -> Client:
    client = Client()
    client.force_login(user)
    session = client.session
    session[FRAME_SESSION_KEY] = {"origins": [MOODLE], "platform": 1}
    session.save()
    return client


@pytest.mark.django_db
def test_a_launched_session_may_be_framed_by_its_platform_only(student, classroom):
    page = _framed_client(student).get(reverse("classroom", kwargs={"classroom_id": classroom.id}), secure=True)
    assert page.status_code == 200
    policy = page.headers["Content-Security-Policy"]
    assert f"frame-ancestors {MOODLE}" in policy and "'none'" not in policy.split("frame-ancestors")[1].split(";")[0]
    assert "script-src 'self'" in policy  # the rest of the policy is as strict as ever
    assert "X-Frame-Options" not in page.headers
    csrf = page.cookies[settings.CSRF_COOKIE_NAME]
    assert csrf["secure"] and csrf["samesite"] == "None; Partitioned"
    assert "SameSite=None; Partitioned" in csrf.OutputString()


@pytest.mark.django_db
def test_every_other_session_keeps_the_strict_policy_and_lax_cookies(student, classroom):
    client = Client()
    client.force_login(student)
    page = client.get(reverse("classroom", kwargs={"classroom_id": classroom.id}), secure=True)
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.cookies[settings.CSRF_COOKIE_NAME]["samesite"] == "Lax"


@pytest.mark.django_db
def test_over_plain_http_the_frame_cookies_stay_lax(student, classroom):
    """Browsers refuse SameSite=None without Secure: in development nothing changes but the frame policy."""
    page = _framed_client(student).get(reverse("classroom", kwargs={"classroom_id": classroom.id}))
    assert f"frame-ancestors {MOODLE}" in page.headers["Content-Security-Policy"]
    assert page.cookies[settings.CSRF_COOKIE_NAME]["samesite"] == "Lax"


@pytest.mark.django_db
def test_signing_out_of_a_framed_session_ends_the_frame_policy(student, classroom):
    client = _framed_client(student)
    client.post(reverse("logout"), secure=True)
    page = client.get(reverse("login"), secure=True)
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
