"""A student's data: export it, delete it with everything they wrote, and retention."""

import json
from datetime import timedelta

import pytest
from django.apps import apps
from django.core import serializers
from django.urls import reverse
from django.utils import timezone

from classrooms.models import AuditEntry, Membership, User
from tests.tutor.helpers import ask, draft
from tutor import services as tutor_services
from tutor import tasks as tutor_tasks
from tutor.models import Conversation, Message

QUESTION = "QUESTION-CANARY-31 how do I solve 2x = 6?"
DRAFT = "DRAFT-CANARY-77 x = 3"
APPROVED = "APPROVED-CANARY-55 Divide both sides by 2."
PENDING_DRAFT = "PENDING-DRAFT-CANARY-12"
CLASSMATE_TEXT = "CLASSMATE-CANARY-90 what is a fraction?"


@pytest.fixture
def history(student, classmate, teacher, classroom):
    """The student has an answered question and one awaiting review; a classmate asked too."""
    reply = draft(ask(student, classroom, text=QUESTION), text=DRAFT)
    tutor_services.reply_approve(reply=reply, reviewer=teacher, text=APPROVED)
    draft(ask(student, classroom, text="second question", conversation=reply.conversation), text=PENDING_DRAFT)
    ask(classmate, classroom, text=CLASSMATE_TEXT)
    return reply.conversation


def export(client, person):
    response = client.get(reverse("school_person_export", args=[person.id]))
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    return response


@pytest.mark.django_db
def test_export_holds_the_students_data_as_they_saw_it(school_admin, student, classroom, history, as_user):
    response = export(as_user(school_admin), student)
    data = json.loads(response.content)
    assert data["account"]["username"] == "student" and data["account"]["first_name"] == "Sam"
    assert data["classes"] == [{"class": "Maths 4e B", "role": "student", "since": data["classes"][0]["since"]}]
    [conversation] = data["conversations"]
    texts = [m["text"] for m in conversation["messages"]]
    assert QUESTION in texts and APPROVED in texts and "second question" in texts
    states = [m["state"] for m in conversation["messages"]]
    assert states.count("reviewing") == 1
    assert AuditEntry.objects.filter(action="person.export", subject=student).exists()


@pytest.mark.django_db
def test_export_holds_no_draft_and_nothing_of_other_students(school_admin, student, classroom, history, as_user):
    raw = export(as_user(school_admin), student).content.decode()
    for canary in (DRAFT, PENDING_DRAFT, CLASSMATE_TEXT, "classmate", "Lou"):
        assert canary not in raw, canary


@pytest.mark.django_db
def test_a_staff_account_is_not_exported_as_a_student(school_admin, teacher, as_user):
    response = as_user(school_admin).get(reverse("school_person_export", args=[teacher.id]))
    assert response.status_code == 302
    assert not AuditEntry.objects.filter(action="person.export").exists()


@pytest.mark.django_db
def test_deletion_asks_for_confirmation_first(school_admin, student, history, as_user):
    client = as_user(school_admin)
    page = client.get(reverse("school_person_delete", args=[student.id]))
    assert page.status_code == 200
    assert "cannot be undone" in page.content.decode()
    client.post(reverse("school_person_delete", args=[student.id]), {"confirm_username": "someone-else"})
    assert User.objects.filter(pk=student.pk).exists()


def everything_in_the_database() -> str:
    dump = []
    for model in apps.get_models():
        dump.append(serializers.serialize("json", model._default_manager.all()))
    return "\n".join(dump)


@pytest.mark.django_db
def test_after_deletion_nothing_of_the_student_remains(
    school_admin, student, classmate, classroom, history, as_user, django_capture_on_commit_callbacks, sockets_told
):
    from axes.models import AccessAttempt
    from django.contrib.sessions.models import Session

    student.username = "sam.unique-7731"
    student.last_name = "Zorglub"
    student.save()
    admin = as_user(school_admin)
    admin.post(reverse("school_class_member_remove", args=[classroom.id, student.id]))  # an audit line about them
    admin.post(reverse("school_class_student_enrol", args=[classroom.id]), {"person": student.id})
    as_user(student).get(reverse("student_classes"))  # a live session
    AccessAttempt.objects.create(
        username=student.username,
        ip_address="10.0.0.1",
        user_agent="x",
        failures_since_start=1,
        get_data="",
        post_data="",
        http_accept="",
        path_info="/",
    )
    student_id = student.id
    assert Session.objects.count() >= 2

    with django_capture_on_commit_callbacks(execute=True):
        response = admin.post(
            reverse("school_person_delete", args=[student_id]), {"confirm_username": student.username}
        )
    assert response.status_code == 302

    assert not User.objects.filter(pk=student_id).exists()
    assert not Membership.objects.filter(user_id=student_id).exists()
    assert not Conversation.objects.filter(student_id=student_id).exists()
    assert Message.objects.filter(conversation__student=classmate).exists()  # the classmate's are kept
    database = everything_in_the_database()
    for canary in (QUESTION, APPROVED, DRAFT, PENDING_DRAFT, "sam.unique-7731", "Zorglub"):
        assert canary not in database, canary
    assert CLASSMATE_TEXT in database
    for session in Session.objects.all():
        assert session.get_decoded().get("_auth_user_id") != str(student_id)
    assert sockets_told == [student_id]
    entry = AuditEntry.objects.get(action="person.delete")
    assert entry.target == f"deleted account #{student_id}" and entry.actor == school_admin


@pytest.mark.django_db
def test_a_teacher_cannot_be_deleted_as_a_student(school_admin, teacher, as_user):
    as_user(school_admin).post(reverse("school_person_delete", args=[teacher.id]), {"confirm_username": "teacher"})
    assert User.objects.filter(pk=teacher.pk).exists()


@pytest.mark.django_db
def test_admin_sets_the_schools_retention_period(school_admin, school, as_user):
    client = as_user(school_admin)
    assert client.post(reverse("school_settings"), {"retention_days": "0"}).status_code == 200
    client.post(reverse("school_settings"), {"retention_days": "180"})
    school.refresh_from_db()
    assert school.retention_days == 180
    assert AuditEntry.objects.get(action="school.retention").details == {"from": 365, "to": 180}


@pytest.mark.django_db
def test_conversations_past_the_schools_retention_are_deleted(
    school, other_school, student, classmate, classroom, foreign_student, foreign_classroom
):
    school.retention_days = 30
    school.save()
    other_school.retention_days = 365
    other_school.save()
    old = ask(student, classroom, text="old question").conversation
    recent = ask(classmate, classroom, text="recent question").conversation
    foreign_old = ask(foreign_student, foreign_classroom, text="old elsewhere").conversation
    Conversation.objects.filter(pk__in=[old.pk, foreign_old.pk]).update(updated_at=timezone.now() - timedelta(days=31))

    assert tutor_services.delete_expired_conversations() == 1

    assert not Conversation.objects.filter(pk=old.pk).exists()
    assert not Message.objects.filter(conversation_id=old.pk).exists()
    assert Conversation.objects.filter(pk=recent.pk).exists()
    assert Conversation.objects.filter(pk=foreign_old.pk).exists()  # its school keeps them a year
    assert tutor_services.delete_expired_conversations() == 0


@pytest.mark.django_db(transaction=True)
def test_the_hourly_beat_task_deletes_expired_conversations(school, student, classroom):
    from django.conf import settings

    schedule = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "tutor.delete_expired_conversations" in schedule
    school.retention_days = 7
    school.save()
    old = ask(student, classroom, text="old question").conversation
    Conversation.objects.filter(pk=old.pk).update(updated_at=timezone.now() - timedelta(days=8))
    assert tutor_tasks.delete_expired_conversations() == 1  # the task itself, called directly
    assert not Conversation.objects.filter(pk=old.pk).exists()
