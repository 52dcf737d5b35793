"""Safeguarding in real browsers: a concern's card goes to the top of the teacher's queue
live (and an urgent one above it), the urgent alert shows as a banner with a sound and a
browser notification on the pages the teacher and the designated staff have open, the
designated person reads it and acknowledges it, and the teacher's banner goes away."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tutor import services
from tutor.models import Message

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# Records the page's browser notifications instead of showing them (permission granted).
NOTIFICATIONS = """
window.__notifications = [];
window.Notification = function (title, options) { window.__notifications.push({ title: title, body: options.body }); };
window.Notification.permission = "granted";
window.Notification.requestPermission = function () { return Promise.resolve("granted"); };
"""


def ask(student, classroom, text: str) -> Message:
    conversation = services.conversation_start(student=student, classroom=classroom)
    question, _ = services.question_ask(conversation=conversation, text=text)
    return question.reply


def card_order(page) -> list[int]:
    return [int(i) for i in page.locator("#cards .card.review").evaluate_all("cs => cs.map(c => c.dataset.id)")]


def test_a_concern_goes_first_live_and_an_urgent_alert_reaches_the_staffs_pages(
    session, student, classmate, teacher, safeguarding_lead, classroom
):
    teacher_view = session("teacher")
    teacher_view.context.add_init_script(NOTIFICATIONS)
    teacher_view.sign_in("teacher")
    page = teacher_view.page
    expect(page.get_by_role("heading", name="Review queue", level=1)).to_be_visible()
    lead_view = session("cpe")
    lead_view.context.add_init_script(NOTIFICATIONS)
    lead_view.sign_in("cpe")
    lead_page = lead_view.page
    expect(lead_page.get_by_role("heading", name="Urgent alerts", level=1)).to_be_visible()

    first = ask(student, classroom, "How do I add 1/2 and 1/3?")
    second = ask(classmate, classroom, "What is the capital of Australia?")
    expect(page.locator(f'.card.review[data-id="{second.id}"]')).to_be_visible(timeout=30_000)
    assert card_order(page) == [first.id, second.id]

    # A concern, asked last, is inserted at the top of the live queue, with its badge.
    worried = ask(classmate, classroom, "everyone at school laughs at me and they post my photos")
    worried_card = page.locator(f'.card.review[data-id="{worried.id}"]')
    expect(worried_card).to_be_visible(timeout=30_000)
    assert card_order(page) == [worried.id, first.id, second.id]
    expect(worried_card.locator(".flag-distressed")).to_have_text("Concern: Bullying or harassment")

    # An urgent message goes above it, and raises the alert on both people's pages.
    urgent = ask(student, classroom, "je veux en finir")
    urgent_card = page.locator(f'.card.review[data-id="{urgent.id}"]')
    expect(urgent_card).to_be_visible(timeout=30_000)
    assert card_order(page) == [urgent.id, worried.id, first.id, second.id]
    # Tier 2 whatever the worker is doing with it (queued, drafting or drafted).
    expect(urgent_card).to_have_class(re.compile(r"\btier-2\b"))
    expect(urgent_card.locator(".alert-link")).to_be_visible()
    for view in (teacher_view, lead_view):
        banner = view.page.locator("#safeguarding-alerts .alert-banner")
        expect(banner).to_have_count(1, timeout=30_000)
        expect(banner).to_have_attribute("role", "alert")
        expect(banner).to_contain_text(f"A student of {classroom.name} may be at risk: Self-harm or suicide.")
        expect(banner).not_to_contain_text("finir")  # no words on a banner
        expect(view.page).to_have_title(re.compile("^\u26a0 "))
        notes = view.page.evaluate("window.__notifications")
        assert [n["title"] for n in notes] == ["Urgent safeguarding alert"] and "finir" not in notes[0]["body"]
        # Browsers play sound only after a gesture on the page: the alarm owed plays then.
        view.page.locator("main").click(position={"x": 5, "y": 5})
        expect(view.page.locator("#safeguarding-alerts")).to_have_attribute("data-last-alarm", re.compile(r"^\d+$"))
    teacher_view.check_accessibility("review queue with an urgent alert")
    teacher_view.screenshot("teacher-queue-urgent-alert")

    # Reloading keeps the same order, and the banner (rendered by the server).
    page.reload()
    assert card_order(page) == [urgent.id, worried.id, first.id, second.id]
    expect(page.locator("#safeguarding-alerts .alert-banner")).to_have_count(1)

    # The designated person opens the alert, reads the words, and acknowledges it.
    lead_page.locator("#safeguarding-alerts .alert-open").click()
    expect(lead_page.locator(".student-words")).to_have_text("je veux en finir")
    lead_view.check_accessibility("urgent alert page")
    lead_view.screenshot("designated-staff-alert")
    lead_page.get_by_role("button", name="I'm on it: acknowledge").click()
    expect(lead_page.locator(".acknowledged")).to_contain_text("Acknowledged by Camille Roux")
    expect(page.locator("#safeguarding-alerts .alert-banner")).to_have_count(0, timeout=30_000)
    expect(page.locator("#safeguarding-alerts .alert-status")).to_contain_text("Camille Roux acknowledged the alert")
