"""Fixed personas, as the product knows them.

teacher and student share `classroom`; classmate is another student of it;
stranger_student is in another class of the same school; other_teacher teaches that
other class; reviewer reviews the drafts of `classroom` without running it; outsider
belongs to no class; school_admin runs `school`; other_admin runs `other_school`.
`school` is open to its students: safeguarding_lead (the CPE) is its designated
safeguarding contact, and its supportive messages are the approved defaults.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from asgiref.sync import SyncToAsync
from django.db import connections
from django.test import Client
from django.utils import timezone

from classrooms.models import (
    DEFAULT_SUPPORTIVE_MESSAGES,
    Classroom,
    Membership,
    SafeguardingContact,
    School,
    SupportiveMessage,
    User,
)


@pytest.fixture(autouse=True)
def _async_tests_connect_afresh():
    """An async test's sync_to_async runs in asgiref's one shared thread, whose database
    connection outlives the test. A test that drops connections (a PostgreSQL outage)
    would leave it closed for every later async test ("the connection is closed"), so it
    is closed after each test; the next one connects again."""
    yield
    SyncToAsync.single_thread_executor.submit(connections.close_all).result()


def make_person(username: str, school: School | None, **extra) -> User:
    user = User.objects.create_user(username=username, password="pass-word-123", school=school, **extra)
    return user


def open_to_students(school: School, lead_username: str = "cpe") -> User:
    """A designated safeguarding contact, the default supportive messages approved, and
    the tutor open to the school's students (as set up before the test: no audit lines).
    Returns the contact."""
    lead = make_person(
        lead_username, school, first_name="Camille", last_name="Roux", email=f"{lead_username}@school.test"
    )
    SafeguardingContact.objects.create(school=school, person=lead, title="CPE")
    for language, text in DEFAULT_SUPPORTIVE_MESSAGES.items():
        SupportiveMessage.objects.create(school=school, language=language, text=text, approved_at=timezone.now())
    School.objects.filter(pk=school.pk).update(student_chat_open=True)
    school.student_chat_open = True
    return lead


@pytest.fixture
def school(db):
    school = School.objects.create(name="Collège Jean Moulin")
    open_to_students(school)
    return school


@pytest.fixture
def safeguarding_lead(school):
    return User.objects.get(username="cpe")


@pytest.fixture
def other_school(db):
    school = School.objects.create(name="Other School")
    open_to_students(school, "othercpe")
    return school


@pytest.fixture
def classroom(school):
    return Classroom.objects.create(school=school, name="Maths 4e B", subject="Mathematics")


@pytest.fixture
def other_classroom(school):
    return Classroom.objects.create(school=school, name="History 3e A")


@pytest.fixture
def teacher(classroom):
    user = make_person("teacher", classroom.school, first_name="Théo")
    Membership.objects.create(classroom=classroom, user=user, role=Membership.Role.TEACHER)
    return user


@pytest.fixture
def co_teacher(classroom):
    user = make_person("coteacher", classroom.school)
    Membership.objects.create(classroom=classroom, user=user, role=Membership.Role.TEACHER)
    return user


@pytest.fixture
def reviewer(classroom):
    """Reviews the drafts of `classroom` (role reviewer): does not run the class."""
    user = make_person("reviewer", classroom.school, first_name="Rémi")
    Membership.objects.create(classroom=classroom, user=user, role=Membership.Role.REVIEWER)
    return user


@pytest.fixture
def student(classroom):
    user = make_person("student", classroom.school, first_name="Sam")
    Membership.objects.create(classroom=classroom, user=user, role=Membership.Role.STUDENT)
    return user


@pytest.fixture
def classmate(classroom):
    user = make_person("classmate", classroom.school, first_name="Lou")
    Membership.objects.create(classroom=classroom, user=user, role=Membership.Role.STUDENT)
    return user


@pytest.fixture
def stranger_student(other_classroom):
    user = make_person("stranger", other_classroom.school)
    Membership.objects.create(classroom=other_classroom, user=user, role=Membership.Role.STUDENT)
    return user


@pytest.fixture
def other_teacher(other_classroom):
    user = make_person("otherteacher", other_classroom.school)
    Membership.objects.create(classroom=other_classroom, user=user, role=Membership.Role.TEACHER)
    return user


@pytest.fixture
def outsider(school):
    return make_person("outsider", school)


@pytest.fixture
def school_admin(school):
    return make_person("schooladmin", school, is_school_admin=True)


@pytest.fixture
def other_admin(other_school):
    return make_person("otheradmin", other_school, is_school_admin=True)


def client_for(user: User | None) -> Client:
    client = Client(enforce_csrf_checks=False)
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture
def as_user():
    return client_for


def pytest_sessionstart(session):
    """Forget the metrics folders of earlier test runs (tests/settings.py gives each run one)."""
    mine = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    for folder in mine.parent.glob("*"):
        if folder == mine or not folder.name.isdigit():
            continue
        try:
            os.kill(int(folder.name), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except (PermissionError, OverflowError):
            pass
