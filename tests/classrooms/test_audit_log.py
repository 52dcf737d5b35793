"""Every admin action is in the school's audit log; each school sees only its own."""

import pytest
from django.urls import reverse

from classrooms import services
from classrooms.models import AuditEntry
from tests.tutor.helpers import ask, draft
from tutor import services as tutor_services


@pytest.mark.django_db
def test_each_admin_action_leaves_a_line(
    school_admin, school, classroom, other_classroom, student, outsider, teacher, as_user
):
    admin = as_user(school_admin)
    steps = [
        ("class.create", lambda: admin.post(reverse("school_class_create"), {"name": "Latin"})),
        (
            "class.rename",
            lambda: admin.post(reverse("school_class_rename", args=[other_classroom.id]), {"name": "Histoire"}),
        ),
        ("class.archive", lambda: admin.post(reverse("school_class_archive", args=[other_classroom.id]))),
        ("class.restore", lambda: admin.post(reverse("school_class_restore", args=[other_classroom.id]))),
        (
            "class.staff_assign",
            lambda: admin.post(
                reverse("school_class_staff_assign", args=[other_classroom.id]),
                {"person": teacher.id, "role": "reviewer"},
            ),
        ),
        (
            "class.student_enrol",
            lambda: admin.post(reverse("school_class_student_enrol", args=[classroom.id]), {"person": outsider.id}),
        ),
        (
            "class.student_move",
            lambda: admin.post(
                reverse("school_class_student_move", args=[classroom.id, outsider.id]),
                {"to_classroom": other_classroom.id},
            ),
        ),
        (
            "class.member_remove",
            lambda: admin.post(reverse("school_class_member_remove", args=[other_classroom.id, outsider.id])),
        ),
        (
            "class.accounts_create",
            lambda: admin.post(reverse("school_class_accounts", args=[classroom.id]), {"names": "Léa Martin"}),
        ),
        ("class.passwords_reset", lambda: admin.post(reverse("school_class_passwords", args=[classroom.id]))),
        ("person.deactivate", lambda: admin.post(reverse("school_person_deactivate", args=[student.id]))),
        ("person.reactivate", lambda: admin.post(reverse("school_person_reactivate", args=[student.id]))),
        ("person.password_reset", lambda: admin.post(reverse("school_person_password", args=[student.id]))),
        (
            "person.create",
            lambda: admin.post(reverse("school_staff_new"), {"username": "new.t", "first_name": "N", "last_name": "T"}),
        ),
        ("person.export", lambda: admin.get(reverse("school_person_export", args=[student.id]))),
        (
            "roster.import",
            lambda: admin.post(
                reverse("school_roster_confirm"),
                {"roster": "student_number,first_name,last_name,class\n5,Ana,B,Latin\n"},
            ),
        ),
        ("school.retention", lambda: admin.post(reverse("school_settings"), {"retention_days": "200"})),
        (
            "person.delete",
            lambda: admin.post(reverse("school_person_delete", args=[student.id]), {"confirm_username": "student"}),
        ),
    ]
    for action, step in steps:
        before = AuditEntry.objects.count()
        step()
        latest = AuditEntry.objects.first()
        assert AuditEntry.objects.count() == before + 1, action
        assert (latest.action, latest.actor, latest.school) == (action, school_admin, school), action


@pytest.mark.django_db
def test_admin_reads_their_schools_log_newest_first_and_paginated(
    school_admin, other_admin, school, other_school, classroom, teacher, student, as_user
):
    for n in range(55):
        services.audit_record(actor=school_admin, action="class.rename", school=school, target=f"Class {n}")
    services.audit_record(actor=other_admin, action="class.create", school=other_school, target="SECRET-OTHER-SCHOOL")
    reply = draft(ask(student, classroom))
    tutor_services.reply_approve(reply=reply, reviewer=teacher)  # a review decision is in the log too
    client = as_user(school_admin)
    first = client.get(reverse("school_audit"))
    html = first.content.decode()
    assert first.status_code == 200
    assert "Page 1 of 2" in html
    assert "approved a draft" in html and "teacher" in html  # newest first
    assert "SECRET-OTHER-SCHOOL" not in html
    second = client.get(reverse("school_audit"), {"page": 2}).content.decode()
    assert "Class 0" in second and "SECRET-OTHER-SCHOOL" not in second
    assert "SECRET-OTHER-SCHOOL" in as_user(other_admin).get(reverse("school_audit")).content.decode()


@pytest.mark.django_db
def test_only_school_admins_read_the_log(teacher, student, as_user):
    for person in (teacher, student):
        assert as_user(person).get(reverse("school_audit")).status_code == 403
