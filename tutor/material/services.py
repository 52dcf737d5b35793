"""Writes of course material: a teacher adds, renames, replaces and deletes a class's
documents; the worker reads each into passages (document_index, the task's one call);
retention deletes what the school keeps no longer. Keyword-only, atomic; the indexing
task is idempotent by the document's (status, version)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from classrooms.models import Classroom, School, User
from classrooms.services import audit_record
from tutor import embeddings
from tutor.material import passages as splitting
from tutor.material import reading
from tutor.models import CourseDocument, CoursePassage

log = logging.getLogger(__name__)

INDEX_TASK = "tutor.index_course_document"
PROGRESS_EVERY_SECONDS = 0.5
EMBED_BATCH = 32


class MaterialRefused(Exception):
    """A teacher's request about material that cannot be done, with what to tell them."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def _refused(exc: reading.Unreadable) -> MaterialRefused:
    return MaterialRefused(_(exc.message) % exc.params if exc.params else _(exc.message))


def _send_index_task(document_id: int, version: int) -> None:
    from tutor.celery import app

    try:
        app.send_task(
            INDEX_TASK,
            args=[document_id, version],
            queue=settings.CELERY_HOUSEKEEPING_QUEUE,
            retry=True,
            retry_policy={"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5},
        )
    except Exception:
        log.exception("could not queue the indexing of document %s; the reconciler will", document_id)


def _clean_name(name: str, filename: str) -> str:
    name = " ".join((name or "").split())[:200]
    if not name:
        stem = filename.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
        name = (stem.rsplit(".", 1)[0] if "." in stem else stem)[:200] or _("Course material")
    return name


def document_add(*, actor: User, classroom: Classroom, filename: str, data: bytes, name: str = "") -> CourseDocument:
    """A new document for the class, queued for the worker to read. Refuses
    (MaterialRefused) a file that cannot be read, and one more than the class may have."""
    try:
        checked = reading.check(filename, data)
    except reading.Unreadable as exc:
        raise _refused(exc) from None
    with transaction.atomic():
        Classroom.objects.select_for_update().get(pk=classroom.pk)  # two uploads at once: one count
        if classroom.course_documents.count() >= settings.TUTOR_MATERIAL_MAX_DOCUMENTS:
            raise MaterialRefused(
                _("This class has %(n)s documents, the most it may have. Delete one first.")
                % {"n": settings.TUTOR_MATERIAL_MAX_DOCUMENTS}
            )
        document = CourseDocument.objects.create(
            classroom=classroom,
            name=_clean_name(name, filename),
            filename=filename[:255],
            kind=checked.kind,
            content=data,
            size=len(data),
            pages=checked.pages,
            uploaded_by=actor,
        )
        _audit(actor, "material.add", document)
        document_id, version = document.pk, document.version
        transaction.on_commit(lambda: _send_index_task(document_id, version))
    return document


def _audit(actor: User, action: str, document: CourseDocument) -> None:
    """One line in the school's audit log: which class's material, and which document."""
    classroom = Classroom.objects.select_related("school").get(pk=document.classroom_id)
    audit_record(
        actor=actor,
        action=action,
        school=classroom.school,
        target=f"{classroom.name} · {document.name}",
        details={"classroom": classroom.id, "document": document.pk},
    )


def document_replace(*, actor: User, document: CourseDocument, filename: str, data: bytes) -> CourseDocument:
    """A new file for the same document (its name kept). Its old passages stop being
    searched at once and are replaced when the worker has read the new file."""
    try:
        checked = reading.check(filename, data)
    except reading.Unreadable as exc:
        raise _refused(exc) from None
    with transaction.atomic():
        document = CourseDocument.objects.select_for_update().get(pk=document.pk)
        document.filename, document.kind, document.content = filename[:255], checked.kind, data
        document.size, document.pages, document.pages_read = len(data), checked.pages, 0
        document.status, document.failure, document.version = CourseDocument.Status.QUEUED, "", document.version + 1
        document.uploaded_by, document.uploaded_at = actor, timezone.now()
        document.save()
        _audit(actor, "material.replace", document)
        document_id, version = document.pk, document.version
        transaction.on_commit(lambda: _send_index_task(document_id, version))
    return document


def document_rename(*, actor: User, document: CourseDocument, name: str) -> CourseDocument:
    name = " ".join((name or "").split())[:200]
    if not name:
        raise MaterialRefused(_("Give the document a name."))
    with transaction.atomic():
        CourseDocument.objects.filter(pk=document.pk).update(name=name)
        document.name = name
        _audit(actor, "material.rename", document)
    return document


def document_delete(*, actor: User, document: CourseDocument) -> None:
    """The document and its passages, at once: no later draft can quote them."""
    with transaction.atomic():
        if CourseDocument.objects.filter(pk=document.pk).delete()[0]:
            _audit(actor, "material.delete", document)


def _set(document_id: int, version: int, **values) -> int:
    return CourseDocument.objects.filter(pk=document_id, version=version, status=CourseDocument.Status.INDEXING).update(
        **values
    )


def _read(document: CourseDocument, on_page: Callable[[int, int], None]) -> list[splitting.Passage]:
    data = bytes(document.content)
    if document.kind == CourseDocument.Kind.PDF:
        pages = list(reading.pdf_pages(data, on_page=on_page))
        return splitting.from_pages(pages)
    if document.kind in (CourseDocument.Kind.DOCX, CourseDocument.Kind.ODT):
        text = reading.office_text(data, document.kind)  # its headings as Markdown's
        on_page(1, 1)
        return splitting.from_text(text, markdown=True)
    text = reading.decode_text(data)
    on_page(1, 1)
    return splitting.from_text(text, markdown=document.kind == CourseDocument.Kind.MARKDOWN)


def document_index(*, document_id: int, version: int) -> str:
    """Read document `document_id` as of `version` into passages, if the database still
    owes it. Returns "not owed", "ready", "no text" or "failed". Safe to repeat."""
    claimed = CourseDocument.objects.filter(
        pk=document_id, version=version, status=CourseDocument.Status.QUEUED
    ).update(status=CourseDocument.Status.INDEXING, indexing_started_at=timezone.now(), pages_read=0)
    if not claimed:
        return "not owed"
    document = CourseDocument.objects.get(pk=document_id)
    last = {"at": 0.0}

    def on_page(number: int, total: int) -> None:
        now = time.monotonic()
        if now - last["at"] >= PROGRESS_EVERY_SECONDS or number == total:
            last["at"] = now
            _set(document_id, version, pages_read=number, pages=total)

    try:
        found = _read(document, on_page)
    except reading.Unreadable as exc:
        no_text = exc.message == reading.NO_TEXT_LAYER
        failure = exc.message % exc.params if exc.params else exc.message
        with transaction.atomic():
            if _set(
                document_id,
                version,
                status=CourseDocument.Status.NO_TEXT if no_text else CourseDocument.Status.FAILED,
                failure=failure[:300],
                content=b"" if no_text else document.content,
            ):
                CoursePassage.objects.filter(document_id=document_id).delete()
        return "no text" if no_text else "failed"
    except Exception:
        log.exception("reading course document %s failed", document_id)
        _set(
            document_id,
            version,
            status=CourseDocument.Status.FAILED,
            failure="This file could not be read.",
        )
        return "failed"
    others = CoursePassage.objects.filter(classroom_id=document.classroom_id).exclude(document_id=document_id).count()
    room = max(0, settings.TUTOR_MATERIAL_MAX_PASSAGES - others)
    found = [p for p in found if p.text.strip()][:room]
    vectors = []
    for start in range(0, len(found), EMBED_BATCH):
        batch = found[start : start + EMBED_BATCH]
        prefixed = [f"{p.section}: {p.text}" if p.section else p.text for p in batch]
        vectors.extend(embeddings.embed_passages([f"{document.name}. {t}" for t in prefixed]))
    with transaction.atomic():
        current = CourseDocument.objects.select_for_update().filter(pk=document_id, version=version).first()
        if current is None or current.status != CourseDocument.Status.INDEXING:
            return "not owed"  # replaced or deleted meanwhile
        CoursePassage.objects.filter(document_id=document_id).delete()
        CoursePassage.objects.bulk_create(
            [
                CoursePassage(
                    document_id=document_id,
                    classroom_id=document.classroom_id,
                    position=i,
                    page=p.page,
                    section=p.section,
                    text=p.text,
                    vector=embeddings.to_bytes(v),
                )
                for i, (p, v) in enumerate(zip(found, vectors, strict=True))
            ],
            batch_size=500,
        )
        current.status = CourseDocument.Status.READY if found else CourseDocument.Status.NO_TEXT
        current.failure = "" if found else reading.NO_TEXT_LAYER
        current.pages_read, current.indexed_at, current.content = current.pages, timezone.now(), b""
        current.save(update_fields=["status", "failure", "pages_read", "indexed_at", "content"])
    return "ready" if found else "no text"


def documents_requeue(*, stuck_after: timedelta = timedelta(minutes=10)) -> int:
    """The reconciler: send again the documents the database says are owed (queued, or
    being read by a worker that died). Returns how many."""
    now = timezone.now()
    CourseDocument.objects.filter(
        status=CourseDocument.Status.INDEXING, indexing_started_at__lt=now - stuck_after
    ).update(status=CourseDocument.Status.QUEUED)
    owed = list(
        CourseDocument.objects.filter(
            status=CourseDocument.Status.QUEUED, uploaded_at__lt=now - timedelta(minutes=1)
        ).values_list("pk", "version")
    )
    for document_id, version in owed:
        _send_index_task(document_id, version)
    return len(owed)


def delete_expired_material(*, school: School) -> int:
    """Retention: the material of an archived class goes once the school's retention
    period has passed since it was last changed and the class keeps no conversation
    (they went by the same rule). A live class's material stays until a teacher deletes
    it; a deleted class takes its material with it (on delete cascade)."""
    cutoff = timezone.now() - timedelta(days=school.retention_days)
    expired = CourseDocument.objects.filter(
        classroom__school=school, classroom__archived=True, uploaded_at__lt=cutoff
    ).exclude(classroom__conversations__isnull=False)
    count = expired.count()
    expired.delete()
    return count
