"""Signing in with an ENT's CAS server, against a real one: django-cas-server (CAS 3.0) in
its own Django process, with its own database, talking to this site on a live server
(ticket validation one way, single sign-out requests the other)."""

from __future__ import annotations

import re
import time

import pytest
import requests
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.urls import reverse
from django_cas_ng.models import SessionTicket

from classrooms.identity.models import IdentityProvider, SchoolSignIn, SignInProblem
from classrooms.models import Classroom, Membership, School, User
from classrooms.selectors import is_staff_member
from tests.classrooms.identity import peers
from tutor import services
from tutor.asgi import application
from tutor.consumers import CLOSE_SIGNED_OUT

pytestmark = pytest.mark.e2e  # the CAS server is its own process

PEOPLE = {
    "lea.martin": ["lea-pass-2026", {"first_name": "Léa", "last_name": "Martin", "email": "lea@ent.example"}],
    "marie.curie": ["marie-pass-2026", {"first_name": "Marie", "last_name": "Curie", "is_staff": True}],
}


@pytest.fixture(scope="module")
def ent(live_server):
    started = time.monotonic()
    with peers.cas_server(service_pattern=f"^{re.escape(live_server.url)}/accounts/cas/.*", people=PEOPLE) as server:
        print(f"CAS server started in {time.monotonic() - started:.1f} s")
        yield server


@pytest.fixture
def ent_sign_in(ent, transactional_db):
    school = School.objects.create(name="Lycée Victor Hugo")
    provider = IdentityProvider.objects.create(
        key=f"s{school.id}-ent",
        name="Mon ENT",
        protocol=IdentityProvider.Protocol.CAS,
        school=school,
        server_url=ent.url,
    )
    return SchoolSignIn.objects.create(
        school=school, provider=provider, create_accounts=True, teacher_claim="is_staff", teacher_values="True"
    )


def _start(browser, live_server, sign_in) -> str:
    answer = browser.get(live_server.url + reverse("identity_sign_in", args=[sign_in.id]), allow_redirects=False)
    assert answer.status_code == 302
    return answer.headers["Location"]


def _signed_in(browser, live_server) -> bool:
    answer = browser.get(live_server.url + reverse("student_classes"), allow_redirects=False)
    return answer.status_code == 200


def test_a_student_signs_in_with_the_ent_and_single_sign_out_ends_the_session(ent, ent_sign_in, live_server):
    classroom = Classroom.objects.create(school=ent_sign_in.school, name="2nde 3")
    browser = requests.Session()
    back = ent.sign_in(browser, _start(browser, live_server, ent_sign_in), "lea.martin", "lea-pass-2026")
    assert back.startswith(live_server.url + "/accounts/cas/") and "ticket=ST-" in back
    assert browser.get(back, allow_redirects=False).status_code == 302
    lea = User.objects.get(last_name="Martin")
    assert (lea.school, lea.first_name, lea.email) == (ent_sign_in.school, "Léa", "lea@ent.example")
    assert not is_staff_member(lea)
    Membership.objects.create(classroom=classroom, user=lea, role=Membership.Role.STUDENT)
    assert _signed_in(browser, live_server)
    assert "2nde 3" in browser.get(live_server.url + reverse("student_classes")).text
    # Signing out at the ENT: the CAS server tells this site, which ends the session, and
    # the chat she has open closes at once (4401: the page offers to sign in again).
    conversation = services.conversation_start(student=lea, classroom=classroom)
    session_key = SessionTicket.objects.get().session_key  # the CAS server's own cookie has the same name
    cookie = f"{settings.SESSION_COOKIE_NAME}={session_key}".encode()

    async def open_chat_then_sign_out_at_the_ent():
        chat = WebsocketCommunicator(
            application,
            f"/ws/chat/{conversation.id}/",
            headers=[(b"origin", b"http://testserver"), (b"host", b"testserver"), (b"cookie", cookie)],
        )
        assert (await chat.connect(timeout=10))[0]
        await sync_to_async(ent.sign_out)(browser)
        return await chat.receive_output(timeout=15)

    assert async_to_sync(open_chat_then_sign_out_at_the_ent)() == {"type": "websocket.close", "code": CLOSE_SIGNED_OUT}
    deadline = time.monotonic() + 15
    while _signed_in(browser, live_server) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _signed_in(browser, live_server)


def test_a_teacher_by_the_schools_rule_and_signing_out_here_signs_out_at_the_ent(ent, ent_sign_in, live_server):
    browser = requests.Session()
    back = ent.sign_in(browser, _start(browser, live_server, ent_sign_in), "marie.curie", "marie-pass-2026")
    browser.get(back, allow_redirects=False)
    assert is_staff_member(User.objects.get(last_name="Curie"))
    page = browser.get(live_server.url + reverse("student_classes"))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    out = browser.post(live_server.url + reverse("logout"), data={"csrfmiddlewaretoken": token}, allow_redirects=False)
    assert out.headers["Location"].startswith(ent.url + "/logout?service=")
    assert not _signed_in(browser, live_server)
    browser.get(out.headers["Location"])  # the browser goes on to the ENT's sign-out
    # The ENT's own session ended too: signing in again asks for the password.
    again = browser.get(_start(browser, live_server, ent_sign_in), allow_redirects=False)
    assert again.status_code == 200 and 'name="password"' in again.text


def test_a_forged_or_replayed_ticket_signs_nobody_in(ent, ent_sign_in, live_server):
    browser = requests.Session()
    back = ent.sign_in(browser, _start(browser, live_server, ent_sign_in), "lea.martin", "lea-pass-2026")
    service = back.split("?")[0]
    _start(browser, live_server, ent_sign_in)
    assert browser.get(service + "?ticket=ST-1-forged", allow_redirects=False).status_code == 403
    assert not User.objects.filter(last_name="Martin").exists()
    # The real ticket works once; replayed from another browser, the CAS server refuses it.
    _start(browser, live_server, ent_sign_in)
    assert browser.get(back, allow_redirects=False).status_code == 302
    replay = requests.Session()
    _start(replay, live_server, ent_sign_in)
    assert replay.get(back, allow_redirects=False).status_code == 403
    assert not _signed_in(replay, live_server)
    assert User.objects.filter(last_name="Martin").count() == 1
    reasons = list(SignInProblem.objects.filter(school=ent_sign_in.school).values_list("reason", flat=True))
    assert reasons == ["ticket", "ticket"]


def test_testing_the_ent_checks_the_cas_server_itself(ent, ent_sign_in):
    from django.test import Client

    from tests.conftest import make_person

    admin = make_person("ent-admin", ent_sign_in.school, is_school_admin=True)
    client = Client()
    client.force_login(admin)
    client.post(reverse("identity_school_sign_in_test", kwargs={"sign_in_id": ent_sign_in.id}))
    page = client.get(reverse("identity_school_sign_in_rules", kwargs={"sign_in_id": ent_sign_in.id})).content.decode()
    assert "The sign-in page answers" in page
    assert "validates tickets at /p3/serviceValidate" in page
    assert f"http://testserver/accounts/cas/{ent_sign_in.provider.key}/" in page  # the service address to register
    assert "✗" not in page
