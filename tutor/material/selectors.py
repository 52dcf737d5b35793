"""Reads of course material: who manages a class's documents (its teachers: the same
selector as the class's settings), and which passages a draft quoted (always of the
reply's own class)."""

from __future__ import annotations

from django.conf import settings
from django.db.models import QuerySet
from django.http import Http404
from django.utils.translation import gettext as _

from classrooms.models import Classroom, User
from classrooms.selectors import classroom_for_teacher
from tutor.material.search import passage_search
from tutor.models import CourseDocument, CoursePassage, Message

EXCERPT_CHARS = 280


def classroom_for_material(user: User, classroom_id: int) -> Classroom:
    """The class whose material this person manages (its teacher); 404 otherwise."""
    return classroom_for_teacher(user, classroom_id)


def documents_of(classroom: Classroom) -> QuerySet[CourseDocument]:
    return classroom.course_documents.defer("content").order_by("name", "id")


def document_for_teacher(user: User, classroom_id: int, document_id: int) -> CourseDocument:
    """A document of a class this person teaches; 404 for missing and not-yours alike."""
    classroom = classroom_for_material(user, classroom_id)
    document = documents_of(classroom).filter(pk=document_id).first()
    if document is None:
        raise Http404
    return document


def document_view(document: CourseDocument) -> dict:
    """A document as its teacher's page shows it, and as the page's script polls it."""
    status = CourseDocument.Status(document.status)
    return {
        "id": document.pk,
        "name": document.name,
        "filename": document.filename,
        "kind": CourseDocument.Kind(document.kind).label,
        "size_kb": max(1, round(document.size / 1024)),
        "pages": document.pages,
        "pages_read": document.pages_read,
        "status": document.status,
        "status_label": str(status.label),
        "busy": document.status in (CourseDocument.Status.QUEUED, CourseDocument.Status.INDEXING),
        "failure": _(document.failure) if document.failure else "",
        "passages": getattr(document, "passage_count", None),
    }


def passages_for_question(classroom_id: int, question: str) -> list[CoursePassage]:
    """The passages of THIS class's ready material that best answer `question`, best
    first (at most TUTOR_MATERIAL_PASSAGES, each at least TUTOR_MATERIAL_MIN_SIMILARITY
    alike); empty when the class has no material or nothing is close enough."""
    hits = passage_search().search(classroom_id=classroom_id, query=question, k=settings.TUTOR_MATERIAL_PASSAGES)
    hits = [h for h in hits if h.similarity >= settings.TUTOR_MATERIAL_MIN_SIMILARITY]
    if not hits:
        return []
    found = CoursePassage.objects.filter(
        pk__in=[h.passage_id for h in hits],
        classroom_id=classroom_id,
        document__status=CourseDocument.Status.READY,
    ).select_related("document")
    by_id = {p.pk: p for p in found}
    return [by_id[h.passage_id] for h in hits if h.passage_id in by_id]


def where(passage: CoursePassage) -> str:
    """Where a passage is, as a teacher cites it: "p. 3", or its section."""
    if passage.page:
        return _("p. %(page)s") % {"page": passage.page}
    return passage.section


def sources_of(reply: Message) -> list[dict]:
    """The course passages the reply's draft was written with (document, page, excerpt),
    of the reply's own class only; a passage deleted since is simply gone."""
    ids = (reply.generation_settings or {}).get("sources") or []
    if not ids:
        return []
    found = CoursePassage.objects.filter(
        pk__in=[i for i in ids if isinstance(i, int)], classroom_id=reply.conversation.classroom_id
    ).select_related("document")
    by_id = {p.pk: p for p in found}
    return [
        {
            "document": by_id[i].document.name,
            "where": where(by_id[i]),
            "excerpt": by_id[i].text[:EXCERPT_CHARS] + ("…" if len(by_id[i].text) > EXCERPT_CHARS else ""),
        }
        for i in ids
        if i in by_id
    ]
