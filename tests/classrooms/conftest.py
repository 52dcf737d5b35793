"""Personas of a second school, and a clean slate for the join-code throttle."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from classrooms.models import Classroom, Membership
from tests.conftest import make_person


@pytest.fixture(autouse=True)
def forget_join_refusals():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def foreign_classroom(other_school):
    return Classroom.objects.create(school=other_school, name="Maths 4e B")


@pytest.fixture
def foreign_student(foreign_classroom):
    user = make_person("foreignstudent", foreign_classroom.school, first_name="Noa")
    Membership.objects.create(classroom=foreign_classroom, user=user, role=Membership.Role.STUDENT)
    return user


@pytest.fixture
def sockets_told(monkeypatch):
    """The ids of people whose sockets were told to re-check access (after commit)."""
    told: list[int] = []
    monkeypatch.setattr("tutor.events.person_access_changed", told.append)
    return told
