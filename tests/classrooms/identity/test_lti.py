"""Opening the tutor from a course, against a real LTI 1.3 platform on loopback (built on
lti1p3platform: it registers the tool dynamically, signs launches with its own RSA key,
checks the tool's signed token requests against the tool's JWKS, serves the course
roster, and checks the tool's deep-linking answer). This site runs as a live server, so
every request between the two is real HTTP.
"""

from __future__ import annotations

import json
import re
import time

import jwt
import pytest
import requests
from asgiref.sync import sync_to_async
from django.core import signing
from django.urls import reverse

from classrooms.identity import services, tasks
from classrooms.identity.models import CourseLink, LtiPlatform, SignInProblem
from classrooms.identity.views import CHOOSE_SALT
from classrooms.models import Classroom, Membership, School, User
from tests.classrooms.identity import peers
from tests.conftest import make_person, open_to_students

COURSE = "course-42"


@pytest.fixture
def moodle():
    with peers.lti_platform() as platform:
        platform.add_course(COURSE, "Maths 4e B")
        platform.add_person("t-1", "Théo", "Prof", email="theo@moodle.example")
        platform.add_person("s-1", "Sam", "Élève")
        platform.add_person("s-2", "Lou", "Élève")
        platform.enrol("t-1", COURSE, platform.INSTRUCTOR)
        platform.enrol("s-1", COURSE, platform.LEARNER)
        platform.enrol("s-2", COURSE, platform.LEARNER)
        yield platform


def register(moodle, live_server, school_name: str = "Collège Jean Moulin") -> LtiPlatform:
    """The school admin makes a registration address; Moodle's admin pastes it."""
    school = School.objects.create(name=school_name)
    open_to_students(school, f"cpe-{school.id}")  # its students may chat (safeguarding set up)
    admin = make_person(f"admin-{school.id}", school, is_school_admin=True)
    invitation = services.platform_invitation_create(actor=admin, school=school)
    tool_url = live_server.url + reverse("identity_lti_register", args=[invitation.token])
    page = requests.get(moodle.registration_url(tool_url), timeout=20)
    assert page.status_code == 200, page.text[:800]
    assert "org.imsglobal.lti.close" in requests.get(live_server.url + "/static/identity/lti_registered.js").text
    return LtiPlatform.objects.select_related("registration").get(school=school)


def choose_class(moodle, live_server, browser, picker, *, name: str = "", classroom: Classroom | None = None):
    token = re.search(r'name="token" value="([^"]+)"', picker.text).group(1)
    data = {"token": token}
    data.update({"classroom": classroom.id} if classroom else {"new": "1", "new_name": name})
    return browser.post(live_server.url + reverse("identity_lti_class_choose"), data=data, allow_redirects=False)


def link_course(moodle, live_server, name: str = "Maths 4e B") -> Classroom:
    """The course's teacher adds the activity (deep linking) and makes a new class."""
    browser = requests.Session()
    picker = moodle.launch(browser, "t-1", COURSE, kind="deep_link")
    assert picker.status_code == 200, picker.text[:800]
    assert moodle.issuer in picker.headers["Content-Security-Policy"]
    answer = choose_class(moodle, live_server, browser, picker, name=name)
    assert answer.status_code == 200, answer.text[:800]
    action, fields = peers.form_of(answer.text, "deep-link-return")
    assert action == moodle.issuer + "/deep-link-return"
    assert "form-action 'self' " + moodle.issuer in answer.headers["Content-Security-Policy"]
    assert browser.post(action, data=fields, timeout=20).text == "added"  # the platform checked our signature
    return Classroom.objects.get(name=name)


def roles_in(classroom: Classroom) -> dict[str, str]:
    return {m.user.first_name: m.role for m in Membership.objects.filter(classroom=classroom).select_related("user")}


@pytest.mark.django_db(transaction=True)
def test_a_teacher_adds_the_tutor_to_a_course_and_its_people_land_in_the_class(moodle, live_server):
    platform = register(moodle, live_server)
    assert platform.registration.deployments.get().is_active
    classroom = link_course(moodle, live_server)
    assert classroom.school == platform.school
    assert moodle.deep_linked[0]["url"] == live_server.url + reverse("identity_lti_launch")
    assert moodle.deep_linked[0]["custom"] == {"tutor_class": str(classroom.id)}
    assert moodle.tokens_issued >= 1  # the roster was read with the tool's own signed token
    assert roles_in(classroom) == {"Théo": "teacher", "Sam": "student", "Lou": "student"}
    # A student opens the activity: the class's chat, inside Moodle's frame.
    browser = requests.Session()
    launched = moodle.launch(browser, "s-1", COURSE)
    assert launched.status_code == 302
    assert launched.headers["Location"] == reverse("classroom", kwargs={"classroom_id": classroom.id})
    chat = browser.get(live_server.url + launched.headers["Location"], allow_redirects=False)
    assert chat.status_code == 200 and "Maths 4e B" in chat.text
    assert f"frame-ancestors {moodle.issuer}" in chat.headers["Content-Security-Policy"]
    assert "X-Frame-Options" not in chat.headers
    # The teacher lands in the review queue.
    teacher = requests.Session()
    assert moodle.launch(teacher, "t-1", COURSE).headers["Location"] == reverse("review_queue")
    # Outside a launch, the site keeps its strict policy.
    outside = requests.get(live_server.url + reverse("login"))
    assert "frame-ancestors 'none'" in outside.headers["Content-Security-Policy"]
    assert outside.headers["X-Frame-Options"] == "DENY"


@pytest.mark.django_db(transaction=True)
def test_a_teacher_can_open_one_of_their_existing_classes_instead(moodle, live_server):
    platform = register(moodle, live_server)
    existing = Classroom.objects.create(school=platform.school, name="3e A")
    browser = requests.Session()
    first = moodle.launch(browser, "t-1", COURSE)  # a plain launch of an unlinked course shows the choice too
    assert first.status_code == 200
    theo = User.objects.get(first_name="Théo")
    Membership.objects.create(classroom=existing, user=theo, role=Membership.Role.TEACHER)
    picker = moodle.launch(browser, "t-1", COURSE)
    assert "3e A" in picker.text
    answer = choose_class(moodle, live_server, browser, picker, classroom=existing)
    assert answer.status_code == 302 and answer.headers["Location"] == reverse("review_queue")
    assert CourseLink.objects.get().classroom == existing
    assert roles_in(existing) == {"Théo": "teacher", "Sam": "student", "Lou": "student"}


@pytest.mark.django_db(transaction=True)
async def test_the_roster_follows_the_course_and_a_removed_students_socket_closes(moodle, live_server):
    from tests.tutor.helpers import ask, socket

    await sync_to_async(register)(moodle, live_server)
    classroom = await sync_to_async(link_course)(moodle, live_server)
    sam = await User.objects.aget(first_name="Sam")
    reply = await sync_to_async(ask)(sam, classroom)
    chat = await socket(f"/ws/chat/{reply.conversation_id}/", sam)
    assert (await chat.connect(timeout=10))[0]
    # In Moodle: Sam leaves the course, Nina joins, Lou is renamed.
    moodle.unenrol("s-1", COURSE)
    moodle.add_person("s-3", "Nina", "Nouvelle")
    moodle.enrol("s-3", COURSE, moodle.LEARNER)
    moodle.people["s-2"]["given_name"] = "Louise"
    await CourseLink.objects.all().aupdate(roster_synced_at=None)
    assert await sync_to_async(tasks.sync_course_rosters)() == 1  # what the worker's beat runs
    assert await sync_to_async(roles_in)(classroom) == {"Théo": "teacher", "Louise": "student", "Nina": "student"}
    output = await chat.receive_output(timeout=10)
    assert output["type"] == "websocket.close"
    # Sam cannot come back through the course's frame either.
    browser = requests.Session()
    launched = await sync_to_async(moodle.launch)(browser, "s-1", COURSE)
    assert launched.status_code == 403


@pytest.mark.django_db(transaction=True)
def test_testing_the_platform_checks_its_keys_and_roster_access(moodle, live_server):
    from django.test import Client

    platform = register(moodle, live_server)
    admin = User.objects.get(is_school_admin=True, school=platform.school)
    client = Client()
    client.force_login(admin)
    client.post(reverse("identity_school_platform_test", kwargs={"platform_id": platform.id}))
    page = client.get(reverse("identity_school_platform", kwargs={"platform_id": platform.id})).content.decode()
    assert "The platform publishes 1 key(s)." in page
    assert "gives roster access" in page  # the platform checked the tool's token against the tool's keys
    assert "all on" in page
    assert "✗" not in page


# Bad input: each refused, said in plain words, logged, kept for the admin; no account made.


def _refused(answer, reason: str, platform: LtiPlatform) -> None:
    assert answer.status_code == 403, answer.text[:500]
    assert SignInProblem.objects.filter(platform=platform, reason=reason).exists(), list(
        SignInProblem.objects.values_list("reason", "detail")
    )


def _resign(moodle, **changes):
    """A launch token re-signed by the platform's key with some claims changed."""

    def tamper(data):
        body = jwt.decode(data["id_token"], options={"verify_signature": False})
        header = jwt.get_unverified_header(data["id_token"])
        body.update(changes)
        return {**data, "id_token": jwt.encode(body, moodle.signing_pem, algorithm="RS256", headers=header)}

    return tamper


@pytest.mark.django_db(transaction=True)
def test_a_replayed_launch_is_refused(moodle, live_server):
    platform = register(moodle, live_server)
    link_course(moodle, live_server)
    browser = requests.Session()
    sent = []
    assert moodle.launch(browser, "s-1", COURSE, replay=sent).status_code == 302
    action, fields = sent[0]
    replayed = browser.post(action, data=fields, allow_redirects=False)
    _refused(replayed, "replay", platform)


@pytest.mark.django_db(transaction=True)
def test_an_expired_or_future_launch_token_names_the_clocks(moodle, live_server):
    platform = register(moodle, live_server)
    link_course(moodle, live_server)
    now = int(time.time())
    moodle.tamper = _resign(moodle, iat=now - 900, exp=now - 600)
    _refused(moodle.launch(requests.Session(), "s-2", COURSE), "expired", platform)
    moodle.tamper = _resign(moodle, iat=now + 600, exp=now + 900)
    _refused(moodle.launch(requests.Session(), "s-2", COURSE), "clock_skew", platform)
    assert "clock" in SignInProblem.objects.get(reason="clock_skew").detail


@pytest.mark.django_db(transaction=True)
def test_an_unknown_issuer_or_a_foreign_key_is_refused(moodle, live_server):
    platform = register(moodle, live_server)
    link_course(moodle, live_server)
    people = User.objects.count()
    moodle.tamper = _resign(moodle, iss="https://impostor.example")
    _refused(moodle.launch(requests.Session(), "s-2", COURSE), "unknown_platform", platform)
    moodle.tamper = None
    moodle.signing_pem = peers.LtiPlatformPeer().private_pem  # the platform's published key no longer matches
    _refused(moodle.launch(requests.Session(), "s-2", COURSE), "signature", platform)
    assert User.objects.count() == people


@pytest.mark.django_db(transaction=True)
def test_an_unknown_deployment_is_refused_until_the_admin_turns_it_on(moodle, live_server):
    platform = register(moodle, live_server)
    link_course(moodle, live_server)
    moodle.add_person("s-9", "Zoé", "Nouvelle")
    moodle.enrol("s-9", COURSE, moodle.LEARNER)
    answer = moodle.launch(requests.Session(), "s-9", COURSE, deployment_id="77")
    _refused(answer, "unknown_deployment", platform)
    assert not User.objects.filter(first_name="Zoé").exists()
    deployment = platform.registration.deployments.get(deployment_id="77")
    assert not deployment.is_active  # listed for the admin, who can turn it on
    admin = User.objects.get(is_school_admin=True, school=platform.school)
    services.deployment_set_active(actor=admin, platform=platform, deployment_id=deployment.id, active=True)
    assert moodle.launch(requests.Session(), "s-9", COURSE, deployment_id="77").status_code in (302, 403)


@pytest.mark.django_db(transaction=True)
def test_another_schools_deployment_cannot_launch_into_this_school(moodle, live_server):
    ours = register(moodle, live_server, "Collège A")
    link_course(moodle, live_server, "Maths A")
    theirs = register(moodle, live_server, "Collège B")  # the same Moodle, registered again for school B
    their_deployment = theirs.registration.deployments.get().deployment_id
    our_client = ours.registration.client_id
    answer = moodle.launch(requests.Session(), "s-1", COURSE, client_id=our_client, deployment_id=their_deployment)
    _refused(answer, "unknown_deployment", ours)
    assert not Membership.objects.filter(classroom__school=theirs.school).exists()


@pytest.mark.django_db(transaction=True)
def test_a_learner_cannot_do_what_only_the_courses_teachers_do(moodle, live_server):
    platform = register(moodle, live_server)
    # A learner's deep-linking launch, and a learner opening a course not linked yet.
    _refused(moodle.launch(requests.Session(), "s-1", COURSE, kind="deep_link"), "not_instructor", platform)
    _refused(moodle.launch(requests.Session(), "s-1", COURSE), "no_class", platform)
    assert not Classroom.objects.exists()
    # A class choice signed for a learner (as if they got hold of one) is refused too.
    link_course(moodle, live_server)
    sam = User.objects.get(first_name="Sam")
    context = CourseLink.objects.get().context
    forged = signing.dumps(
        {"p": platform.id, "u": sam.id, "c": context.id, "dl": None}, salt=CHOOSE_SALT, compress=True
    )
    answer = requests.post(
        live_server.url + reverse("identity_lti_class_choose"), data={"token": forged, "new": "1", "new_name": "Mine"}
    )
    _refused(answer, "not_instructor", platform)
    assert not Classroom.objects.filter(name="Mine").exists()


@pytest.mark.django_db(transaction=True)
def test_a_used_registration_address_cannot_register_another_platform(moodle, live_server):
    platform = register(moodle, live_server)
    invitation = platform.school.platform_invitations.get()
    with peers.lti_platform() as other:
        url = other.registration_url(live_server.url + reverse("identity_lti_register", args=[invitation.token]))
        answer = requests.get(url, timeout=20)
    assert answer.status_code == 403
    assert LtiPlatform.objects.count() == 1
    assert not other.tools  # the tool never registered with it


def test_the_platform_peer_lists_its_messages():
    """The peer's own configuration is what a Moodle 4.5 sends (a guard on the test itself)."""
    peer = peers.LtiPlatformPeer()
    peer.issuer = "https://moodle.example"
    config = peer.openid_configuration()
    assert config["registration_endpoint"].startswith(peer.issuer)
    assert json.dumps(config)
