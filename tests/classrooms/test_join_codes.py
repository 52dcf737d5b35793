"""Getting students in, 2: a class's join code, typed after signing in or when signing up."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from classrooms import services
from classrooms.models import AuditEntry, Membership, User


def join(client, code):
    return client.post(reverse("join_class"), {"code": code})


def sign_up(client, code, username="lea.m", **extra):
    data = {
        "code": code,
        "first_name": "Léa",
        "last_name": "Martin",
        "username": username,
        "password1": "blue-kite-river-42",
        "password2": "blue-kite-river-42",
        **extra,
    }
    return client.post(reverse("sign_up"), data)


@pytest.mark.django_db
def test_student_joins_a_class_with_its_code_typed_loosely(outsider, classroom, as_user):
    client = as_user(outsider)
    code = classroom.join_code
    response = join(client, f" {code[:3].lower()}-{code[3:].lower()} ")
    assert response.status_code == 302
    assert response.url == reverse("classroom", args=[classroom.id])
    assert Membership.objects.get(user=outsider, classroom=classroom).role == Membership.Role.STUDENT
    assert AuditEntry.objects.filter(action="class.join", actor=outsider).exists()


@pytest.mark.django_db
def test_a_wrong_code_is_refused_clearly(outsider, classroom, as_user):
    response = join(as_user(outsider), "ZZZZZZ")
    assert response.status_code == 200
    assert "No class has this join code" in response.content.decode()
    assert not Membership.objects.filter(user=outsider).exists()


@pytest.mark.django_db
def test_a_disabled_code_is_refused(outsider, classroom, teacher, as_user):
    as_user(teacher).post(reverse("teach_join_code_switch", args=[classroom.id]), {"enabled": "off"})
    classroom.refresh_from_db()
    assert not classroom.join_code_enabled
    response = join(as_user(outsider), classroom.join_code)
    assert "not taking new students" in response.content.decode()
    assert not Membership.objects.filter(user=outsider).exists()
    as_user(teacher).post(reverse("teach_join_code_switch", args=[classroom.id]), {"enabled": "on"})
    assert join(as_user(outsider), classroom.join_code).status_code == 302


@pytest.mark.django_db
def test_an_expired_code_is_refused(outsider, classroom, as_user):
    classroom.join_code_expires_at = timezone.now() - timedelta(minutes=1)
    classroom.save()
    response = join(as_user(outsider), classroom.join_code)
    assert "expired" in response.content.decode()
    assert not Membership.objects.filter(user=outsider).exists()


@pytest.mark.django_db
def test_a_rotated_code_replaces_the_old_one(outsider, stranger_student, classroom, teacher, as_user):
    old = classroom.join_code
    response = as_user(teacher).post(reverse("teach_join_code_rotate", args=[classroom.id]))
    assert response.status_code == 302
    classroom.refresh_from_db()
    assert classroom.join_code != old
    assert classroom.join_code_expires_at > timezone.now()
    assert "No class has this join code" in join(as_user(outsider), old).content.decode()
    assert join(as_user(stranger_student), classroom.join_code).status_code == 302
    assert AuditEntry.objects.filter(action="class.join_code_rotate", actor=teacher).exists()


@pytest.mark.django_db
def test_only_the_class_teachers_and_its_school_admin_rotate_or_switch_its_code(
    classroom, other_teacher, student, other_admin, school_admin, as_user
):
    """A teacher of another class, a student or another school's admin gets 404; the
    class's own school admin runs its settings (classroom_for_teacher) and may."""
    code = classroom.join_code
    for person in (other_teacher, student, other_admin):
        assert as_user(person).post(reverse("teach_join_code_rotate", args=[classroom.id])).status_code == 404
        assert (
            as_user(person).post(reverse("teach_join_code_switch", args=[classroom.id]), {"enabled": "off"}).status_code
            == 404
        )
    classroom.refresh_from_db()
    assert classroom.join_code == code and classroom.join_code_enabled
    assert as_user(school_admin).post(reverse("teach_join_code_rotate", args=[classroom.id])).status_code == 302
    classroom.refresh_from_db()
    assert classroom.join_code != code


@pytest.mark.django_db
def test_an_archived_class_cannot_be_joined(outsider, classroom, as_user):
    classroom.archived = True
    classroom.save()
    assert "No class has this join code" in join(as_user(outsider), classroom.join_code).content.decode()


@pytest.mark.django_db
def test_a_code_of_another_school_is_refused(outsider, foreign_classroom, as_user):
    response = join(as_user(outsider), foreign_classroom.join_code)
    assert "another school" in response.content.decode()
    assert not Membership.objects.filter(user=outsider).exists()


@pytest.mark.django_db
def test_staff_cannot_join_as_students(teacher, school_admin, other_classroom, as_user):
    for person in (teacher, school_admin):
        response = join(as_user(person), other_classroom.join_code)
        assert "Staff accounts cannot join" in response.content.decode()
    assert not Membership.objects.filter(classroom=other_classroom).exists()


@pytest.mark.django_db
def test_joining_twice_says_so(student, classroom, as_user):
    assert "already in" in join(as_user(student), classroom.join_code).content.decode()


@pytest.mark.django_db
def test_guessing_codes_is_stopped(outsider, classroom, as_user):
    client = as_user(outsider)
    for n in range(services.JOIN_REFUSALS_LIMIT):
        join(client, f"WRONG{n}")
    response = join(client, classroom.join_code)
    assert "Too many wrong codes" in response.content.decode()
    assert not Membership.objects.filter(user=outsider).exists()


@pytest.mark.django_db
def test_sign_up_with_a_code_creates_a_student_of_that_school_and_class(classroom, client):
    response = sign_up(client, classroom.join_code.lower())
    assert response.status_code == 302
    assert response.url == reverse("classroom", args=[classroom.id])
    lea = User.objects.get(username="lea.m")
    assert lea.school == classroom.school
    assert not lea.is_school_admin
    assert list(Membership.objects.filter(user=lea).values_list("classroom_id", "role")) == [(classroom.id, "student")]
    assert lea.check_password("blue-kite-river-42")
    assert client.get(reverse("classroom", args=[classroom.id])).status_code == 200  # signed in


@pytest.mark.django_db
@pytest.mark.parametrize("state", ["wrong", "disabled", "expired"])
def test_sign_up_with_a_bad_code_creates_no_account(classroom, client, state):
    code = classroom.join_code
    if state == "wrong":
        code = "QQQQQQ"
    elif state == "disabled":
        classroom.join_code_enabled = False
    else:
        classroom.join_code_expires_at = timezone.now() - timedelta(days=1)
    classroom.save()
    response = sign_up(client, code)
    assert response.status_code == 200
    assert "code" in response.context["form"].errors
    assert not User.objects.filter(username="lea.m").exists()


@pytest.mark.django_db
def test_sign_up_refuses_a_taken_username_a_weak_password_and_a_formula_name(classroom, client, student):
    assert "taken" in sign_up(client, classroom.join_code, username="STUDENT").content.decode()
    weak = sign_up(client, classroom.join_code, password1="12345678", password2="12345678")
    assert "password1" in weak.context["form"].errors or "password2" in weak.context["form"].errors
    formula = sign_up(client, classroom.join_code, first_name='=HYPERLINK("x")')
    assert "first_name" in formula.context["form"].errors
    assert User.objects.filter(school=classroom.school).exclude(safeguarding_roles__isnull=False).count() == 1


@pytest.mark.django_db
def test_signed_in_people_are_sent_to_the_join_page(student, as_user):
    response = as_user(student).get(reverse("sign_up"))
    assert response.status_code == 302 and response.url == reverse("join_class")


@pytest.mark.django_db
def test_guessing_codes_at_sign_up_is_stopped_per_address(classroom, client):
    for _attempt in range(services.SIGN_UP_REFUSALS_LIMIT):  # as many wrong codes from the school's address
        services._note_refusal("ip.127.0.0.1")
    response = sign_up(client, classroom.join_code)
    assert "Too many wrong codes" in response.content.decode()
    assert not User.objects.filter(username="lea.m").exists()
