"""A class's teachers shape its tutor; the next draft follows."""

import pytest
from django.urls import reverse

from classrooms.models import DEFAULT_TUTOR_INSTRUCTIONS, AuditEntry, Classroom
from tests.tutor.helpers import ask
from tutor import prompts
from tutor.models import Message

SETTINGS = {
    "subject": "Physique-chimie",
    "level": "Seconde",
    "reply_language": "French",
    "tutor_instructions": "Use only SI units. Never give the final number.",
    "max_reply_words": "80",
}


@pytest.mark.django_db
def test_teacher_saves_the_settings_and_the_next_prompt_uses_them(teacher, student, classroom, as_user):
    response = as_user(teacher).post(reverse("teach_class", args=[classroom.id]), SETTINGS)
    assert response.status_code == 302
    reply = Message.objects.get(pk=ask(student, classroom).pk)  # as the worker loads it
    system = prompts.build_prompt(reply, count_tokens=lambda turns: 0, max_prompt_tokens=1000)[0]["content"]
    assert "Use only SI units" in system
    assert "Subject: Physique-chimie." in system and "Seconde" in system
    assert "Answer in French." in system and "under 80 words" in system
    entry = AuditEntry.objects.get(action="class.tutor_settings")
    assert sorted(entry.details["changed"]) == sorted(SETTINGS)


@pytest.mark.django_db
def test_the_default_instructions_come_back_when_asked_or_left_empty(teacher, classroom, as_user):
    client = as_user(teacher)
    client.post(reverse("teach_class", args=[classroom.id]), SETTINGS)
    client.post(reverse("teach_class", args=[classroom.id]), {**SETTINGS, "restore_default": "on"})
    classroom.refresh_from_db()
    assert classroom.tutor_instructions == DEFAULT_TUTOR_INSTRUCTIONS
    client.post(reverse("teach_class", args=[classroom.id]), {**SETTINGS, "tutor_instructions": "  "})
    classroom.refresh_from_db()
    assert classroom.tutor_instructions == DEFAULT_TUTOR_INSTRUCTIONS


@pytest.mark.django_db
def test_an_absurd_reply_length_is_refused(teacher, classroom, as_user):
    response = as_user(teacher).post(
        reverse("teach_class", args=[classroom.id]), {**SETTINGS, "max_reply_words": "5000"}
    )
    assert response.status_code == 200
    assert "max_reply_words" in response.context["form"].errors
    classroom.refresh_from_db()
    assert classroom.max_reply_words == 60 and classroom.subject == "Mathematics"


@pytest.mark.django_db
def test_only_the_class_teachers_edit_its_tutor(classroom, other_teacher, student, other_admin, as_user):
    # Its own school's admin may (tests/classrooms/test_new_user_fixes.py).
    for person in (other_teacher, student, other_admin):
        assert as_user(person).get(reverse("teach_class", args=[classroom.id])).status_code == 404
        assert as_user(person).post(reverse("teach_class", args=[classroom.id]), SETTINGS).status_code == 404
    assert Classroom.objects.get(pk=classroom.pk).subject == "Mathematics"


@pytest.mark.django_db
def test_teacher_of_several_classes_sees_them_all(teacher, classroom, other_classroom, as_user):
    from classrooms.models import Membership

    Membership.objects.create(classroom=other_classroom, user=teacher, role=Membership.Role.TEACHER)
    page = as_user(teacher).get(reverse("teach_home")).content.decode()
    assert classroom.name in page and other_classroom.name in page
    assert as_user(teacher).get(reverse("teach_class", args=[other_classroom.id])).status_code == 200
