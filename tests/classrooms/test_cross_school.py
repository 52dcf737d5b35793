"""An admin of one school addressing another school's objects by id: 404, and nothing changed."""

import pytest
from django.urls import reverse

from classrooms.models import AuditEntry, Classroom, Membership, User
from tests.tutor.helpers import ask


def state():
    return (
        list(Classroom.objects.order_by("id").values_list("id", "name", "archived", "join_code")),
        list(Membership.objects.order_by("id").values_list("user_id", "classroom_id", "role")),
        list(User.objects.order_by("id").values_list("id", "is_active", "password", "first_name")),
        AuditEntry.objects.count(),
    )


@pytest.fixture
def other_schools_requests(classroom, other_classroom, student, teacher, foreign_classroom, foreign_student):
    """Requests by id into `school`, made by the admin of `other_school`."""
    ask(student, classroom)
    c, s = classroom.id, student.id
    return [
        ("get", reverse("school_class", args=[c]), {}),
        ("post", reverse("school_class_rename", args=[c]), {"name": "Hacked"}),
        ("post", reverse("school_class_archive", args=[c]), {}),
        ("post", reverse("school_class_restore", args=[c]), {}),
        ("post", reverse("school_class_staff_assign", args=[c]), {"person": teacher.id, "role": "teacher"}),
        ("post", reverse("school_class_student_enrol", args=[c]), {"person": s}),
        ("post", reverse("school_class_member_remove", args=[c, s]), {}),
        ("post", reverse("school_class_member_remove", args=[foreign_classroom.id, s]), {}),
        ("post", reverse("school_class_student_move", args=[c, s]), {"to_classroom": foreign_classroom.id}),
        ("get", reverse("school_class_accounts", args=[c]), {}),
        ("post", reverse("school_class_accounts", args=[c]), {"names": "Evil Twin"}),
        ("get", reverse("school_class_passwords", args=[c]), {}),
        ("post", reverse("school_class_passwords", args=[c]), {}),
        ("get", reverse("school_person", args=[s]), {}),
        ("post", reverse("school_person_deactivate", args=[s]), {}),
        ("post", reverse("school_person_reactivate", args=[s]), {}),
        ("post", reverse("school_person_password", args=[s]), {}),
        ("get", reverse("school_person_export", args=[s]), {}),
        ("get", reverse("school_person_delete", args=[s]), {}),
        ("post", reverse("school_person_delete", args=[s]), {"confirm_username": "student"}),
    ]


@pytest.mark.django_db
def test_other_schools_admin_gets_404_and_changes_nothing(other_admin, other_schools_requests, as_user):
    client = as_user(other_admin)
    before = state()
    for method, url, data in other_schools_requests:
        response = getattr(client, method)(url, data)
        assert response.status_code == 404, (method, url, response.status_code)
        assert "not yours to see" in response.content.decode()
    assert state() == before


@pytest.mark.django_db
def test_another_schools_people_and_classes_are_not_offered_in_forms(
    school_admin, classroom, foreign_student, foreign_classroom, as_user
):
    client = as_user(school_admin)
    before = state()
    client.post(reverse("school_class_student_enrol", args=[classroom.id]), {"person": foreign_student.id})
    client.post(
        reverse("school_class_staff_assign", args=[classroom.id]), {"person": foreign_student.id, "role": "teacher"}
    )
    assert state() == before
    page = client.get(reverse("school_class", args=[classroom.id])).content.decode()
    assert "foreignstudent" not in page


@pytest.mark.django_db
def test_moving_a_student_into_another_schools_class_is_refused(
    school_admin, classroom, student, foreign_classroom, as_user
):
    before = state()
    response = as_user(school_admin).post(
        reverse("school_class_student_move", args=[classroom.id, student.id]),
        {"to_classroom": foreign_classroom.id},
        follow=True,
    )
    assert "Select a valid choice" in response.content.decode()
    assert state() == before
