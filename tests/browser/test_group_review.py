"""A teacher has a draft open when a second student asks the same thing: the card says so
live ("1 more student asked this since you opened it") instead of adding them silently,
and the teacher includes them with one key. The decision then answers both, and a
student who asked after that is left for a card of their own."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from classrooms.models import Membership
from tests.conftest import make_person
from tests.tutor.helpers import draft
from tutor import services
from tutor.models import Message

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

QUESTION = "How do I find the area of a triangle with base 6 and height 4?"
DRAFT = "Half of the base times the height: (6 x 4) / 2 = 12."


def ask(student, classroom) -> Message:
    conversation = services.conversation_start(student=student, classroom=classroom)
    question, _ = services.question_ask(conversation=conversation, text=QUESTION)
    return Message.objects.get(pk=question.reply.pk)


def test_the_card_says_who_asked_since_it_was_opened_and_includes_them_by_keyboard(
    session, student, classmate, teacher, classroom
):
    me = session("teacher")
    page = me.page
    keyboard = page.keyboard
    lead = draft(ask(student, classroom), text=DRAFT)
    me.sign_in("teacher")
    card = page.locator(f'.card.review[data-id="{lead.id}"]')
    expect(card).to_have_class("card review awaiting_review")
    expect(card.locator(".group")).to_be_hidden()

    # The teacher opens the draft (J); then Lou asks the same words.
    keyboard.press("j")
    expect(card).to_be_focused()
    member = ask(classmate, classroom)
    assert member.status == Message.Status.GROUPED
    notice = card.locator(".group-new")
    expect(notice).to_have_text("1 more student asked this since you opened it")
    expect(card.locator(".group")).to_be_hidden()  # not added to what the decision answers
    expect(card.locator("input[name=members]").first).to_have_value("")
    include = card.get_by_role("button", name="Include them")
    expect(include).to_be_visible()
    me.check_accessibility("review card with students who asked since")
    me.screenshot("teacher-card-asked-since")

    # I includes them: the card now shows both students, and the decision answers both.
    keyboard.press("i")
    expect(notice).to_be_empty()
    expect(include).to_be_hidden()
    expect(card.locator(".group")).to_have_text("2 students asked this")
    expect(card.locator(".group-list li")).to_have_count(2)
    expect(card.locator(".group-list")).to_contain_text(str(classmate))
    expect(card.locator("input[name=members]").first).to_have_value(str(member.id))
    expect(card).to_be_focused()
    me.screenshot("teacher-card-group-included")

    third = make_person("latecomer", classroom.school)
    Membership.objects.create(classroom=classroom, user=third, role=Membership.Role.STUDENT)
    late = ask(third, classroom)
    expect(notice).to_have_text("1 more student asked this since you opened it")
    keyboard.press("a")

    # The decision reached the two students shown; the latecomer waits on a card of their own.
    late_card = page.locator(f'.card.review[data-id="{late.id}"]')
    expect(card).to_have_count(0)
    expect(late_card).to_have_class("card review awaiting_review")
    expect(page.locator("#announce")).to_contain_text("1 other student still waits")
    for reply in (lead, member, late):
        reply.refresh_from_db()
    assert (lead.status, lead.final_text) == ("approved", DRAFT)
    assert (member.status, member.final_text) == ("approved", DRAFT)
    assert (late.status, late.final_text) == ("awaiting_review", "")
