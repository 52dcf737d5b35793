"""A school admin runs the school's classes: create, rename, archive, restore; teachers and students."""

import pytest
from django.urls import reverse

from classrooms.models import AuditEntry, Classroom, Membership
from tests.tutor.helpers import ask


def actions(school):
    return list(AuditEntry.objects.filter(school=school).values_list("action", flat=True))


@pytest.mark.django_db
def test_school_admin_sees_the_classes_of_their_school_only(school_admin, classroom, foreign_classroom, as_user):
    foreign_classroom.name = "Physique 2nde"
    foreign_classroom.save()
    page = as_user(school_admin).get(reverse("school_home"))
    assert page.status_code == 200
    assert classroom.name in page.content.decode()
    assert "Physique 2nde" not in page.content.decode()


@pytest.mark.django_db
def test_teacher_and_student_are_told_the_school_pages_are_not_for_them(teacher, student, as_user):
    for person in (teacher, student):
        page = as_user(person).get(reverse("school_home"))
        assert page.status_code == 403
        assert "for the school's administrators" in page.content.decode()


@pytest.mark.django_db
def test_admin_creates_a_class_with_a_join_code(school_admin, school, as_user):
    response = as_user(school_admin).post(reverse("school_class_create"), {"name": "  Anglais   5e C "})
    classroom = Classroom.objects.get(school=school, name="Anglais 5e C")
    assert response.status_code == 302
    assert response.url == reverse("school_class", args=[classroom.id])
    assert classroom.join_code and classroom.join_code_enabled and classroom.join_code_expires_at
    assert actions(school) == ["class.create"]


@pytest.mark.django_db
def test_two_classes_of_a_school_cannot_share_a_name(school_admin, classroom, as_user):
    client = as_user(school_admin)
    response = client.post(reverse("school_class_create"), {"name": classroom.name.upper()}, follow=True)
    assert "already has a class called" in response.content.decode()
    assert Classroom.objects.filter(school=classroom.school).count() == 1


@pytest.mark.django_db
def test_class_name_that_would_run_as_a_formula_is_refused(school_admin, school, as_user):
    as_user(school_admin).post(reverse("school_class_create"), {"name": '=HYPERLINK("http://x")'})
    assert not Classroom.objects.filter(school=school).exists()


@pytest.mark.django_db
def test_admin_renames_a_class(school_admin, classroom, as_user):
    as_user(school_admin).post(reverse("school_class_rename", args=[classroom.id]), {"name": "Maths 4e C"})
    classroom.refresh_from_db()
    assert classroom.name == "Maths 4e C"
    entry = AuditEntry.objects.get(action="class.rename")
    assert entry.details["from"] == "Maths 4e B"
    assert entry.actor == school_admin


@pytest.mark.django_db
def test_archiving_closes_the_class_to_its_students_and_restoring_opens_it(
    school_admin, classroom, student, teacher, as_user, django_capture_on_commit_callbacks, sockets_told
):
    admin = as_user(school_admin)
    with django_capture_on_commit_callbacks(execute=True):
        admin.post(reverse("school_class_archive", args=[classroom.id]))
    assert as_user(student).get(reverse("classroom", args=[classroom.id])).status_code == 404
    assert sorted(sockets_told) == sorted([student.id, teacher.id])
    admin.post(reverse("school_class_restore", args=[classroom.id]))
    assert as_user(student).get(reverse("classroom", args=[classroom.id])).status_code == 200
    assert actions(classroom.school) == ["class.restore", "class.archive"]


@pytest.mark.django_db
def test_admin_assigns_a_teacher_who_then_reviews_the_class(school_admin, classroom, student, school, as_user):
    from tests.conftest import make_person

    new_teacher = make_person("newteacher", school)
    reply = ask(student, classroom)
    as_user(school_admin).post(
        reverse("school_class_staff_assign", args=[classroom.id]), {"person": new_teacher.id, "role": "teacher"}
    )
    assert Membership.objects.get(classroom=classroom, user=new_teacher).role == Membership.Role.TEACHER
    queue = as_user(new_teacher).get(reverse("review_queue"))
    assert queue.status_code == 200
    assert f'data-id="{reply.id}"' in queue.content.decode()


@pytest.mark.django_db
def test_a_student_account_cannot_be_made_a_teacher(
    school_admin, classroom, other_classroom, stranger_student, as_user
):
    as_user(school_admin).post(
        reverse("school_class_staff_assign", args=[classroom.id]), {"person": stranger_student.id, "role": "teacher"}
    )
    assert not Membership.objects.filter(classroom=classroom, user=stranger_student).exists()


@pytest.mark.django_db
def test_removing_a_teacher_ends_their_review_access_and_closes_their_sockets(
    school_admin, classroom, teacher, student, as_user, django_capture_on_commit_callbacks, sockets_told
):
    reply = ask(student, classroom)
    with django_capture_on_commit_callbacks(execute=True):
        as_user(school_admin).post(reverse("school_class_member_remove", args=[classroom.id, teacher.id]))
    assert not Membership.objects.filter(classroom=classroom, user=teacher).exists()
    assert sockets_told == [teacher.id]
    assert as_user(teacher).post(reverse("review_reject", args=[reply.id])).status_code == 404


@pytest.mark.django_db
def test_admin_enrols_moves_and_removes_a_student(
    school_admin, classroom, other_classroom, outsider, as_user, django_capture_on_commit_callbacks, sockets_told
):
    admin = as_user(school_admin)
    admin.post(reverse("school_class_student_enrol", args=[classroom.id]), {"person": outsider.id})
    assert as_user(outsider).get(reverse("classroom", args=[classroom.id])).status_code == 200

    with django_capture_on_commit_callbacks(execute=True):
        admin.post(
            reverse("school_class_student_move", args=[classroom.id, outsider.id]), {"to_classroom": other_classroom.id}
        )
    assert list(Membership.objects.filter(user=outsider).values_list("classroom_id", "role")) == [
        (other_classroom.id, "student")
    ]
    assert as_user(outsider).get(reverse("classroom", args=[classroom.id])).status_code == 404
    assert as_user(outsider).get(reverse("classroom", args=[other_classroom.id])).status_code == 200

    with django_capture_on_commit_callbacks(execute=True):
        admin.post(reverse("school_class_member_remove", args=[other_classroom.id, outsider.id]))
    assert not Membership.objects.filter(user=outsider).exists()
    assert sockets_told == [outsider.id, outsider.id]
    assert actions(classroom.school) == ["class.member_remove", "class.student_move", "class.student_enrol"]


@pytest.mark.django_db
def test_a_teacher_cannot_be_enrolled_as_a_student(school_admin, other_classroom, teacher, as_user):
    response = as_user(school_admin).post(
        reverse("school_class_student_enrol", args=[other_classroom.id]), {"person": teacher.id}, follow=True
    )
    assert response.status_code == 200
    assert not Membership.objects.filter(classroom=other_classroom, user=teacher).exists()


@pytest.mark.django_db
def test_class_page_lists_its_teachers_and_students(school_admin, classroom, teacher, student, as_user):
    page = as_user(school_admin).get(reverse("school_class", args=[classroom.id])).content.decode()
    assert "Théo" in page and "Sam" in page
