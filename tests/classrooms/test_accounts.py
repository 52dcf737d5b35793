"""A school admin deactivates, reactivates and resets the password of the school's accounts."""

import pytest
from django.urls import reverse

from classrooms.models import AuditEntry, User
from tests.conftest import make_person
from tests.tutor.helpers import ask


@pytest.mark.django_db
def test_deactivated_student_is_signed_out_and_cannot_sign_in(
    school_admin, student, classroom, as_user, client, django_capture_on_commit_callbacks, sockets_told
):
    conversation = ask(student, classroom).conversation
    student_client = as_user(student)
    with django_capture_on_commit_callbacks(execute=True):
        response = as_user(school_admin).post(reverse("school_person_deactivate", args=[student.id]))
    assert response.status_code == 302
    student.refresh_from_db()
    assert not student.is_active
    assert sockets_told == [student.id]
    assert student_client.get(reverse("conversation", args=[conversation.id])).status_code == 302  # to sign-in
    assert not client.login(username="student", password="pass-word-123")
    assert AuditEntry.objects.filter(action="person.deactivate", subject=student).exists()


@pytest.mark.django_db
def test_reactivated_student_signs_in_again(school_admin, student, as_user, client):
    admin = as_user(school_admin)
    admin.post(reverse("school_person_deactivate", args=[student.id]))
    admin.post(reverse("school_person_reactivate", args=[student.id]))
    assert client.login(username="student", password="pass-word-123")


@pytest.mark.django_db
def test_reset_password_is_shown_once_and_works(school_admin, teacher, as_user, client):
    response = as_user(school_admin).post(reverse("school_person_password", args=[teacher.id]))
    assert response.status_code == 200
    card = response.context["sheets"][0][1][0]
    assert card.username == "teacher"
    assert "no-store" in response.headers["Cache-Control"]
    assert not client.login(username="teacher", password="pass-word-123")
    assert client.login(username="teacher", password=card.password)


@pytest.mark.django_db
def test_admins_accounts_are_left_to_the_operator(school_admin, school, as_user):
    colleague = make_person("coadmin", school, is_school_admin=True)
    admin = as_user(school_admin)
    for target in (colleague, school_admin):
        for name in ("school_person_deactivate", "school_person_password"):
            admin.post(reverse(name, args=[target.id]))
        target.refresh_from_db()
        assert target.is_active and target.check_password("pass-word-123")


@pytest.mark.django_db
def test_the_operator_is_not_one_of_the_school_people(school_admin, school, as_user):
    operator = User.objects.create_superuser("operator", password="x-secret-123", school=school)
    admin = as_user(school_admin)
    assert admin.get(reverse("school_person", args=[operator.id])).status_code == 404
    assert admin.post(reverse("school_person_password", args=[operator.id])).status_code == 404
    assert "operator" not in admin.get(reverse("school_people")).content.decode()


@pytest.mark.django_db
def test_admin_creates_a_staff_account_and_assigns_it(school_admin, school, classroom, as_user):
    admin = as_user(school_admin)
    response = admin.post(
        reverse("school_staff_new"),
        {"username": "m.durand", "first_name": "Marie", "last_name": "Durand", "email": "m.durand@example.org"},
    )
    assert response.status_code == 200
    marie = User.objects.get(username="m.durand")
    assert marie.school == school and marie.check_password(response.context["sheets"][0][1][0].password)
    admin.post(reverse("school_class_staff_assign", args=[classroom.id]), {"person": marie.id, "role": "teacher"})
    assert as_user(marie).get(reverse("teach_class", args=[classroom.id])).status_code == 200


@pytest.mark.django_db
def test_people_page_finds_a_person_and_pages(school_admin, school, student, as_user):
    for n in range(60):
        make_person(f"pupil{n:02d}", school, last_name=f"Zed{n:02d}")
    admin = as_user(school_admin)
    first = admin.get(reverse("school_people")).content.decode()
    assert "Page 1 of 2" in first
    found = admin.get(reverse("school_people"), {"q": "Sam"}).content.decode()
    assert "student" in found and "pupil01" not in found
