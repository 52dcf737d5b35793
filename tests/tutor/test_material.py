"""Course material: a teacher adds a chapter, the worker reads it into passages, a
student's question gets that class's passages in its prompt and the teacher's card shows
them; bad files get a clear message; deletion and retention remove it all."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from tests.tutor.chapter import PAGES
from tests.tutor.helpers import ScriptedModel, ask, run_drafting
from tests.tutor.office_files import docx, odt, zip_bomb
from tests.tutor.pdf_files import encrypted_pdf, image_pdf, text_pdf
from tutor import services as tutor_services
from tutor.material import reading, services
from tutor.models import CourseDocument, CoursePassage
from tutor.selectors import reviewer_view

CHAPTER = text_pdf(PAGES)
ENTITIES = '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><d>&b;</d>'
BLOCKS = [
    (1, "Photosynthesis"),
    (0, "Photosynthesis happens in the chloroplasts of the leaf."),
    (0, "Chlorophyll absorbs red\tand blue light."),
    (2, "Respiration"),
    (0, "Respiration  releases energy from glucose in the mitochondria."),
]


def upload(client, classroom, data: bytes, filename: str, name: str = ""):
    return client.post(
        reverse("teach_material", args=[classroom.id]),
        {"file": SimpleUploadedFile(filename, data), "name": name},
        follow=True,
    )


def index_all() -> list[str]:
    """What the worker's task does for each owed document."""
    return [
        services.document_index(document_id=d.pk, version=d.version)
        for d in CourseDocument.objects.filter(status=CourseDocument.Status.QUEUED)
    ]


def flashed(response) -> str:
    return " ".join(str(m) for m in response.context["messages"])


def add_chapter(teacher, classroom, name="Chapter 4") -> CourseDocument:
    document = services.document_add(actor=teacher, classroom=classroom, filename="ch4.pdf", data=CHAPTER, name=name)
    assert services.document_index(document_id=document.pk, version=document.version) == "ready"
    document.refresh_from_db()
    return document


def test_it_adds_indexes_shows_and_deletes_a_chapter(as_user, teacher, classroom):
    client = as_user(teacher)
    response = upload(client, classroom, CHAPTER, "chapter4.pdf", name="Chapter 4: photosynthesis")
    assert "was added" in flashed(response)
    document = CourseDocument.objects.get(classroom=classroom)
    assert (document.status, document.pages) == ("queued", 6)
    assert index_all() == ["ready"]
    document.refresh_from_db()
    assert (document.status, document.pages_read, document.content) == ("ready", 6, b"")
    passages = list(document.passages.all())
    assert len(passages) >= 6 and {p.page for p in passages} == set(range(1, 7))
    assert all(len(bytes(p.vector)) == 384 * 4 for p in passages)
    page = client.get(reverse("teach_material", args=[classroom.id])).content.decode()
    assert "Chapter 4: photosynthesis" in page and "Ready" in page
    status = client.get(reverse("teach_material_status", args=[classroom.id])).json()
    assert status["documents"][0]["pages_read"] == 6 and status["documents"][0]["passages"] == len(passages)

    client.post(reverse("teach_material_rename", args=[classroom.id, document.id]), {"name": "Ch. 4"})
    assert CourseDocument.objects.get().name == "Ch. 4"
    client.post(
        reverse("teach_material_replace", args=[classroom.id, document.id]),
        {"file": SimpleUploadedFile("notes.md", b"# Stomata\n\nStomata are pores in the leaf.")},
    )
    assert index_all() == ["ready"]
    replaced = CoursePassage.objects.filter(document=document)
    assert [(p.section, p.page) for p in replaced] == [("Stomata", None)]

    response = client.post(reverse("teach_material_delete", args=[classroom.id, document.id]), follow=True)
    assert "was deleted" in flashed(response)
    assert not CourseDocument.objects.exists() and not CoursePassage.objects.exists()
    # Each action has its line in the school's audit log, naming the class and document.
    lines = list(classroom.school.audit_entries.filter(action__startswith="material.").order_by("id"))
    assert [(e.action, e.actor, e.details["document"]) for e in lines] == [
        (action, teacher, document.id)
        for action in ("material.add", "material.rename", "material.replace", "material.delete")
    ]
    assert lines[-1].target == f"{classroom.name} · Ch. 4"


@pytest.mark.parametrize(
    "filename, data, says",
    [
        ("empty.pdf", b"", "This file is empty."),
        ("notes.txt", b"", "This file is empty."),
        ("photo.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4, "may be another kind of file"),
        ("program.pdf", b"MZ\x90\x00\x03\x00\x00\x00" + bytes(200), "is named .pdf but is not a PDF"),
        ("broken.pdf", CHAPTER[: len(CHAPTER) // 3], "This PDF is damaged"),
        ("locked.pdf", encrypted_pdf(), "protected by a password"),
        ("bomb.pdf", image_pdf(5000, width=100000, height=100000), "This PDF has 5000 pages; at most 300"),
        ("slides.pptx", b"PK\x03\x04" + bytes(100), "Only PDF, Word (.docx), OpenDocument (.odt), plain text"),
        ("notes.docx", b"Some notes typed in a text editor.", "is named .docx but is not one"),
        ("notes.odt", docx([(0, "A Word file renamed.")]), "is named .odt but is not one"),
        ("old.docx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(500), "an old Word file (.doc) or one protected"),
        ("blank.odt", odt([(1, " "), (0, "")]), "This file is empty."),
        ("cut.docx", docx([(0, "A chapter.")])[:60], "This document is damaged"),
        ("broken.docx", docx([], body="<w:document><w:body>"), "This document is damaged"),
        ("laughs.docx", docx([], body=ENTITIES), "This document is damaged"),
    ],
)
def test_a_bad_file_is_refused_with_a_clear_message(as_user, teacher, classroom, filename, data, says):
    response = upload(as_user(teacher), classroom, data, filename)
    assert says in flashed(response)
    assert not CourseDocument.objects.exists()


@pytest.mark.parametrize(
    "filename, data",
    [
        ("chapter.docx", docx(BLOCKS)),  # Word's style ids in English
        ("chapitre.docx", docx(BLOCKS, heading_style="Titre{level}")),  # and in French
        ("chapter.odt", odt(BLOCKS)),
    ],
)
def test_a_word_or_opendocument_chapter_is_read_with_its_sections(as_user, teacher, classroom, filename, data):
    response = upload(as_user(teacher), classroom, data, filename)
    assert "was added" in flashed(response)
    assert index_all() == ["ready"]
    assert CourseDocument.objects.get().kind == filename.rsplit(".", 1)[1]
    assert [(p.section, p.page, p.text) for p in CoursePassage.objects.order_by("id")] == [
        (
            "Photosynthesis",
            None,
            "Photosynthesis happens in the chloroplasts of the leaf. Chlorophyll absorbs red and blue light.",
        ),
        ("Respiration", None, "Respiration releases energy from glucose in the mitochondria."),
    ]


def test_a_zip_bomb_named_docx_is_refused_before_it_is_unpacked(as_user, teacher, classroom, monkeypatch):
    monkeypatch.setattr(reading, "MAX_UNPACKED_BYTES", 1024 * 1024)
    response = upload(as_user(teacher), classroom, zip_bomb("word/document.xml", 4 * 1024 * 1024), "bomb.docx")
    assert "This file is too big" in flashed(response)
    assert not CourseDocument.objects.exists()


def test_a_scan_with_no_text_layer_is_said_to_be_one_and_nothing_is_indexed(as_user, teacher, classroom):
    upload(as_user(teacher), classroom, image_pdf(3, width=2000, height=3000), "scan.pdf")
    assert index_all() == ["no text"]
    document = CourseDocument.objects.get()
    assert document.status == "no_text" and not document.passages.exists()
    page = as_user(teacher).get(reverse("teach_material", args=[classroom.id])).content.decode()
    assert "this looks like a scan" in page


def test_reading_a_pdf_bomb_stops_at_the_time_cap(teacher, classroom, settings):
    settings.TUTOR_MATERIAL_MAX_PAGES = 100000
    data = image_pdf(3000, width=100000, height=100000)
    document = services.document_add(actor=teacher, classroom=classroom, filename="bomb.pdf", data=data)
    settings.TUTOR_MATERIAL_READ_SECONDS = 0.2
    assert services.document_index(document_id=document.pk, version=document.version) == "failed"
    document.refresh_from_db()
    assert "took too long" in document.failure and not document.passages.exists()


def test_a_class_has_at_most_its_limit_of_documents(teacher, classroom, settings):
    settings.TUTOR_MATERIAL_MAX_DOCUMENTS = 1
    services.document_add(actor=teacher, classroom=classroom, filename="a.txt", data=b"Leaves are green.")
    with pytest.raises(services.MaterialRefused, match="the most it may have"):
        services.document_add(actor=teacher, classroom=classroom, filename="b.txt", data=b"Roots drink.")


def test_a_question_gets_its_own_class_passages_only_and_the_card_shows_them(
    teacher, other_teacher, classroom, other_classroom, student, stranger_student
):
    add_chapter(teacher, classroom)
    services.document_add(
        actor=other_teacher,
        classroom=other_classroom,
        filename="other.txt",
        data=b"Stomata OTHER-CLASS-CANARY are the doors of the leaf, says the other class's book.",
    )
    index_all()
    model = ScriptedModel("Through the stomata (Chapter 4, p. 2).", "Through the stomata.")
    reply = run_drafting(ask(student, classroom, "How does carbon dioxide get into a leaf?"), model)
    prompt = "\n".join(m["content"] for m in model.prompts[0])
    assert "Course material from this class's teacher" in prompt and "underside of the leaf" in prompt
    assert "[Chapter 4, p. 2]" in prompt
    assert "OTHER-CLASS-CANARY" not in prompt

    card = reviewer_view(reply)
    assert any(
        s["document"] == "Chapter 4" and s["where"] == "p. 2" and "stomata" in s["excerpt"] for s in card["sources"]
    ), card["sources"]

    stranger = run_drafting(ask(stranger_student, other_classroom, "How does carbon dioxide get into a leaf?"), model)
    other_prompt = "\n".join(m["content"] for m in model.prompts[1])
    assert "underside of the leaf" not in other_prompt and "Chapter 4" not in other_prompt
    assert all(s["document"] != "Chapter 4" for s in reviewer_view(stranger)["sources"])


def test_the_review_page_shows_the_sources(as_user, teacher, classroom, student):
    add_chapter(teacher, classroom)
    run_drafting(ask(student, classroom, "What colour does iodine turn with starch?"), ScriptedModel("Blue-black."))
    page = as_user(teacher).get(reverse("review_queue")).content.decode()
    assert "Course material used" in page and "blue-black where starch is present" in page


def test_a_question_in_a_class_without_material_gets_the_plain_prompt(classroom, student):
    model = ScriptedModel("A prime has two divisors.")
    reply = run_drafting(ask(student, classroom), model)
    assert "Course material" not in model.prompts[0][0]["content"]
    assert reviewer_view(reply)["sources"] == []


def test_retention_removes_an_archived_class_material_and_its_passages(teacher, classroom, other_classroom, student):
    add_chapter(teacher, classroom)
    kept = add_chapter(teacher, other_classroom)
    ask(student, classroom)
    classroom.archived = True
    classroom.save()
    later = timezone.now() + timedelta(days=classroom.school.retention_days + 1)
    with mock.patch("django.utils.timezone.now", return_value=later):
        tutor_services.delete_expired_conversations()
    assert list(CourseDocument.objects.all()) == [kept]  # the live class keeps its material
    assert set(CoursePassage.objects.values_list("classroom_id", flat=True)) == {other_classroom.id}


def test_material_goes_with_its_class(teacher, classroom):
    add_chapter(teacher, classroom)
    classroom.delete()
    assert not CourseDocument.objects.exists() and not CoursePassage.objects.exists()
