"""A school admin signs in, creates a class, imports a roster into it, and prints the
new students' login cards."""

from __future__ import annotations

import pytest
from django.urls import NoReverseMatch, reverse
from playwright.sync_api import expect

from classrooms.models import Classroom, Membership

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ROSTER = (
    "student_number,first_name,last_name,class\nS-1001,Inès,Martin,Sciences 5e A\nS-1002,Noah,Bernard,Sciences 5e A\n"
)


def admin_pages_exist() -> bool:
    try:
        reverse("school_class_create")
        reverse("school_roster")
        reverse("school_roster_confirm")
    except NoReverseMatch:
        return False
    return True


@pytest.mark.skipif(not admin_pages_exist(), reason="the school administration pages are not built yet")
def test_school_admin_creates_a_class_imports_a_roster_and_prints_login_cards(session, school_admin, school):
    me = session("admin")
    page = me.page
    me.sign_in("schooladmin")

    # Classes: create one.
    expect(page.get_by_role("heading", name="Classes", level=1)).to_be_visible()
    me.check_accessibility("school classes")
    page.get_by_label("New class").fill("Sciences 5e A")
    page.get_by_role("button", name="Create the class").click()
    expect(page.get_by_text("Sciences 5e A").first).to_be_visible()
    me.check_accessibility("class created")
    assert Classroom.objects.filter(school=school, name="Sciences 5e A").exists()

    # Import a roster: preview, then confirm.
    page.get_by_role("navigation", name="School administration").get_by_role("link", name="Import a roster").click()
    expect(page.get_by_role("heading", name="Import a roster", level=1)).to_be_visible()
    me.check_accessibility("import a roster")
    page.locator("input[type=file]").set_input_files(
        files=[{"name": "roster.csv", "mimeType": "text/csv", "buffer": ROSTER.encode()}]
    )
    page.get_by_role("button", name="Preview").click()
    expect(page.get_by_role("heading", name="Roster preview")).to_be_visible()
    expect(page.locator("table")).to_contain_text("Inès")
    me.check_accessibility("roster preview")
    page.get_by_role("button", name="Confirm the import").click()

    # Login cards for the two new students, ready to print.
    cards = page.locator(".login-card")
    expect(cards).to_have_count(2)
    expect(cards.first).to_contain_text("Inès Martin")
    me.check_accessibility("login cards")
    classroom = Classroom.objects.get(school=school, name="Sciences 5e A")
    assert classroom.memberships.filter(role=Membership.Role.STUDENT).count() == 2
    page.evaluate("window.print = () => { window.__printed = true; }")  # no print dialog in a test
    page.get_by_role("button", name="Print the cards").click()
    assert page.evaluate("window.__printed === true")
    me.screenshot("admin-login-cards")
    page.emulate_media(media="print")
    page.screenshot(path=str(me.screenshot_dir / "admin-login-cards-print.png"), full_page=True)
    page.emulate_media(media="screen")


def test_wide_and_narrow_pages_fit_their_window(session, school_admin, teacher, classroom):
    """A hidden "Role" label made the admin class page 1,444 px wide in a 1,280 px window;
    the French teacher header hid "Se déconnecter" off a 390 px phone; A with no draft
    selected did nothing."""
    me = session("admin")
    me.sign_in("schooladmin")
    me.page.goto(reverse("school_class", args=[classroom.id]))
    assert me.page.evaluate("document.documentElement.scrollWidth") <= 1280
    me.page.get_by_role("link", name="The class's tutor settings, quotas and opening hours").click()
    expect(me.page.get_by_role("heading", name="Quotas and opening hours")).to_be_visible()

    teacher.language = "fr"
    teacher.save(update_fields=["language"])
    phone = session("teacher")  # signs in in English; the teacher's own language (French) wins after
    phone.page.set_viewport_size({"width": 390, "height": 800})
    phone.sign_in("teacher")
    phone.page.goto(reverse("teach_home"))
    sign_out = phone.page.get_by_role("button", name="Se déconnecter")
    box = sign_out.bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390, box
    assert phone.page.evaluate("document.documentElement.scrollWidth") <= 390
    expect(phone.page.get_by_role("link", name="File de relecture")).to_be_visible()
    phone.page.goto(reverse("review_queue"))
    phone.page.keyboard.press("a")
    expect(phone.page.locator("#keys-hint")).to_contain_text("Aucun brouillon")
