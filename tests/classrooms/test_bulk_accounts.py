"""Getting students in, 3: accounts for young students without e-mail, and their login cards."""

import re

import pytest
from django.contrib.staticfiles import finders
from django.urls import reverse

from classrooms.models import AuditEntry, Membership, User

NAMES = "Léa Martin\nHugo Bernard\n\nInès  Petit-Durand\n"


def create_accounts(client, classroom, names=NAMES):
    return client.post(reverse("school_class_accounts", args=[classroom.id]), {"names": names})


def shown_passwords(html: str) -> list[str]:
    return re.findall(r'<dt>Password</dt><dd class="card-secret">([^<]+)</dd>', html)


@pytest.mark.django_db
def test_admin_creates_accounts_and_gets_a_printable_sheet_of_cards(school_admin, classroom, as_user):
    response = create_accounts(as_user(school_admin), classroom)
    assert response.status_code == 200
    html = response.content.decode()
    new = list(User.objects.filter(memberships__classroom=classroom).order_by("id"))
    assert [(u.first_name, u.last_name) for u in new] == [
        ("Léa", "Martin"),
        ("Hugo", "Bernard"),
        ("Inès", "Petit-Durand"),
    ]
    assert all(u.school_id == classroom.school_id and not u.email for u in new)
    assert all(re.fullmatch(r"[a-z]+\d{2,}", u.username) for u in new)
    passwords = shown_passwords(html)
    assert len(passwords) == 3
    for person, password in zip(new, passwords, strict=True):
        assert person.username in html
        assert person.check_password(password)
        assert password not in person.password  # only a hash is kept
    assert html.count('class="login-sheet"') == 1  # one page for the class
    assert 'href="/static/classrooms/cards.css"' in html and "<style" not in html
    assert '<script src="/static/classrooms/print.js">' in html and "<script>" not in html
    assert "no-store" in response.headers["Cache-Control"]
    assert AuditEntry.objects.get(action="class.accounts_create").details["students"] == 3


@pytest.mark.django_db
def test_the_passwords_are_shown_once(school_admin, classroom, as_user):
    client = as_user(school_admin)
    passwords = shown_passwords(create_accounts(client, classroom).content.decode())
    for url in (reverse("school_class", args=[classroom.id]), reverse("school_people"), reverse("school_audit")):
        page = client.get(url).content.decode()
        assert not any(password in page for password in passwords), url


@pytest.mark.django_db
def test_new_students_sign_in_with_their_card(school_admin, classroom, as_user, client):
    html = create_accounts(as_user(school_admin), classroom, "Léa Martin").content.decode()
    username = User.objects.get(first_name="Léa").username
    assert client.login(username=username, password=shown_passwords(html)[0])
    assert client.get(reverse("classroom", args=[classroom.id])).status_code == 200


@pytest.mark.django_db
def test_names_that_would_run_as_formulas_are_refused_and_nothing_is_created(school_admin, classroom, as_user):
    response = create_accounts(as_user(school_admin), classroom, 'Léa Martin\n=HYPERLINK("http://x") Evil\n')
    assert response.status_code == 200
    assert "starts with =" in response.content.decode()
    assert not Membership.objects.filter(classroom=classroom).exists()


@pytest.mark.django_db
def test_a_line_without_a_last_name_is_refused(school_admin, classroom, as_user):
    response = create_accounts(as_user(school_admin), classroom, "Léa\n")
    assert "needs a first name and a last name" in response.content.decode()
    assert not User.objects.filter(first_name="Léa").exists()


@pytest.mark.django_db
def test_resetting_the_class_passwords_prints_a_new_sheet(
    school_admin, classroom, student, classmate, teacher, as_user
):
    client = as_user(school_admin)
    confirm_page = client.get(reverse("school_class_passwords", args=[classroom.id]))
    assert "All 2 students" in confirm_page.content.decode()
    old_teacher_hash = teacher.password
    response = client.post(reverse("school_class_passwords", args=[classroom.id]))
    html = response.content.decode()
    passwords = shown_passwords(html)
    assert len(passwords) == 2
    student.refresh_from_db()
    classmate.refresh_from_db()
    teacher.refresh_from_db()
    assert not student.check_password("pass-word-123")
    assert {student.check_password(p) or classmate.check_password(p) for p in passwords} == {True}
    assert teacher.password == old_teacher_hash  # teachers keep theirs
    assert "Sam" in html and "Lou" in html


@pytest.mark.django_db
def test_login_card_sheet_never_starts_a_text_like_a_formula(school_admin, classroom, student, as_user):
    student.first_name = '=HYPERLINK("http://evil")'
    student.last_name = "X"
    student.save()
    html = as_user(school_admin).post(reverse("school_class_passwords", args=[classroom.id])).content.decode()
    names = re.findall(r'<p class="card-name">([^<]*)</p>', html)
    assert names and not any(name.startswith(("=", "+", "-", "@")) for name in names)


@pytest.mark.django_db
def test_several_classes_print_one_page_each(school_admin, school, classroom, other_classroom, as_user):
    roster = "student_number,first_name,last_name,class\n1,Léa,Martin,Maths 4e B\n2,Hugo,Bernard,History 3e A\n"
    html = as_user(school_admin).post(reverse("school_roster_confirm"), {"roster": roster}).content.decode()
    assert html.count('class="login-sheet"') == 2


def test_print_styles_put_each_class_on_its_own_page():
    css = open(finders.find("classrooms/cards.css")).read()
    print_rules = css[css.index("@media print") :]
    assert "break-after: page" in print_rules
    assert ".site-header" in print_rules and "display: none" in print_rules


@pytest.mark.django_db
def test_only_the_school_admin_creates_accounts(teacher, student, other_admin, classroom, as_user):
    for person in (teacher, student, other_admin):
        response = create_accounts(as_user(person), classroom)
        assert response.status_code in (403, 404)
    assert not User.objects.filter(first_name="Hugo").exists()
