"""What a new user hit, fixed (issue 16, item 6): each as the person would notice it."""

import pytest
from django.test import override_settings
from django.urls import reverse
from django.utils import translation

from classrooms import services as classroom_services
from classrooms.models import AuditEntry
from classrooms.selectors import audit_lines
from tests.tutor.helpers import ask, draft
from tutor import services
from tutor.text import title_from


def test_the_review_queue_link_is_in_the_header_of_every_teacher_page(teacher, classroom, as_user):
    client = as_user(teacher)
    for url in (reverse("teach_home"), reverse("teach_class", args=[classroom.id]), reverse("review_queue")):
        assert f'href="{reverse("review_queue")}"' in client.get(url).content.decode(), url


def test_a_school_admin_reaches_a_class_tutor_settings_without_teaching_it(school_admin, classroom, as_user):
    client = as_user(school_admin)
    assert (
        f'href="{reverse("teach_class", args=[classroom.id])}"'
        in client.get(reverse("school_class", args=[classroom.id])).content.decode()
    )
    assert client.get(reverse("teach_class", args=[classroom.id])).status_code == 200
    client.post(reverse("teach_class_pause", args=[classroom.id]), {"paused": "on"})
    classroom.refresh_from_db()
    assert classroom.paused


@override_settings(DEBUG=True)
def test_another_class_settings_page_is_the_sites_404_even_in_debug(other_teacher, classroom, as_user):
    response = as_user(other_teacher).get(reverse("teach_class", args=[classroom.id]))
    page = response.content.decode()
    assert response.status_code == 404
    assert "not yours to see" in page
    assert "URL patterns" not in page and "urlpatterns" not in page


def test_conversation_titles_are_cut_at_a_word():
    question = "How do I add fractions with different denominators when one of them is negative?"
    title = title_from(question)
    assert title == "How do I add fractions with different denominators when one…"
    assert len(title) <= 60 and question.startswith(title[:-1])
    assert title_from("short question") == "short question"
    assert title_from("x" * 80) == "x" * 59 + "…"  # one long word: cut where it must be


def test_the_first_question_names_the_conversation_at_a_word(student, classroom):
    reply = ask(
        student, classroom, text="Pourquoi la somme des angles d'un triangle fait-elle toujours cent quatre-vingts ?"
    )
    reply.conversation.refresh_from_db()
    assert reply.conversation.title == "Pourquoi la somme des angles d'un triangle fait-elle…"


def test_audit_lines_name_the_reply_and_are_translated(student, teacher, classroom, school_admin, as_user):
    reply = draft(ask(student, classroom))
    services.reply_approve(reply=reply, reviewer=teacher)
    AuditEntry.objects.create(school=classroom.school, actor_name="admin", action="roster.import", target="3 rows")
    with translation.override("fr"):
        lines = audit_lines(AuditEntry.objects.filter(school=classroom.school))
    about = {line.action: line.about for line in lines}
    labels = {line.action: line.label for line in lines}
    assert about["review.as_drafted"] == "la réponse à Sam en Maths 4e B"
    assert about["roster.import"] == "3 élèves dans le fichier"
    assert labels["review.as_drafted"] == "a approuvé un brouillon" or "reply" not in labels["review.as_drafted"]
    page = as_user(school_admin).get(reverse("school_audit")).content.decode()
    assert f"reply {reply.pk}" not in page and "3 rows" not in page


@pytest.mark.parametrize("who", ["student", "school_admin"])
def test_a_class_with_no_teacher_warns_its_students_and_the_admin(request, who, classroom, as_user):
    person = request.getfixturevalue(who)
    url = reverse("classroom" if who == "student" else "school_class", args=[classroom.id])
    assert "has no teacher" in as_user(person).get(url).content.decode()
    request.getfixturevalue("teacher")  # the class gets its teacher
    assert "has no teacher" not in as_user(person).get(url).content.decode()


def test_every_page_has_a_favicon(student, as_user):
    page = as_user(student).get(reverse("student_classes")).content.decode()
    assert 'rel="icon"' in page
    assert as_user(student).get("/favicon.ico").status_code in (301, 302)


def test_a_teacher_resets_their_own_students_passwords_and_prints_the_cards(teacher, student, classroom, as_user):
    client = as_user(teacher)
    assert client.get(reverse("teach_class_passwords", args=[classroom.id])).status_code == 200
    cards = client.post(reverse("teach_class_passwords", args=[classroom.id]))
    assert cards.status_code == 200 and student.username in cards.content.decode()
    student.refresh_from_db()
    assert not student.check_password("pass-word-123")


def test_a_teacher_cannot_reset_another_class_passwords(other_teacher, student, classroom, as_user):
    assert as_user(other_teacher).post(reverse("teach_class_passwords", args=[classroom.id])).status_code == 404
    student.refresh_from_db()
    assert student.check_password("pass-word-123")


def test_pausing_twice_records_one_line(teacher, classroom):
    assert classroom_services.classroom_pause_set(actor=teacher, classroom=classroom, paused=True)
    assert not classroom_services.classroom_pause_set(actor=teacher, classroom=classroom, paused=True)
    assert AuditEntry.objects.filter(action="class.paused").count() == 1
