"""A teacher adds a chapter to their class from the course material page, watches it
being read, and is told clearly when a file cannot be added."""

from __future__ import annotations

import threading

import pytest
from playwright.sync_api import expect

from tests.tutor.chapter import PAGES
from tests.tutor.pdf_files import text_pdf
from tutor.material import services
from tutor.models import CourseDocument

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_teacher_adds_a_chapter_and_sees_it_read(session, teacher, classroom):
    me = session("teacher")
    page = me.page
    me.sign_in("teacher")
    page.goto(f"{me.base_url}/teach/classes/{classroom.id}/")
    page.get_by_role("link", name="Course material").click()
    expect(page.get_by_role("heading", name="Course material", level=1)).to_be_visible()
    expect(page.get_by_text("No course material yet")).to_be_visible()
    me.check_accessibility("course material, empty")

    # A renamed binary: refused, with what to do.
    page.get_by_label("File").set_input_files(
        files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"\x00\x01\x02PK" * 100}]
    )
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.get_by_text("This file is not text")).to_be_visible()
    assert not CourseDocument.objects.exists()

    page.get_by_label("File").set_input_files(
        files=[{"name": "chapter4.pdf", "mimeType": "application/pdf", "buffer": text_pdf(PAGES)}]
    )
    page.get_by_label("Name (optional)").fill("Chapter 4: photosynthesis")
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.get_by_text("“Chapter 4: photosynthesis” was added")).to_be_visible()
    expect(page.locator(".document .status-label")).to_have_text("Waiting to be read")
    me.check_accessibility("course material, a document waiting")

    # The worker reads it (here, the task's one call); the open page follows on its own.
    document = CourseDocument.objects.get()
    reader = threading.Thread(
        target=services.document_index, kwargs={"document_id": document.pk, "version": document.version}
    )
    reader.start()
    reader.join(60)
    expect(page.locator(".document .status-label")).to_have_text("Ready", timeout=15000)
    expect(page.locator(".document .passages")).to_contain_text("passages")
    expect(page.locator(".document-meta")).to_contain_text("6 pages")
    me.check_accessibility("course material, ready")
