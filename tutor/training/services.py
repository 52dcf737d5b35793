"""Writes of the training loop: an export (recorded in the audit log)."""

from __future__ import annotations

from datetime import date

from django.db import transaction

from classrooms.models import Classroom, School, User
from classrooms.services import audit_record
from tutor.training.dataset import Export, ExportRefused, export_reviews


def reviews_export(
    *,
    actor: User | None,
    school: School,
    classroom: Classroom | None = None,
    since: date | None = None,
    until: date | None = None,
) -> Export:
    """The export of export_reviews, by a school admin of `school` (or the command line,
    actor None), recorded in the school's audit log with its counts."""
    if actor is not None and not (actor.is_school_admin and actor.school_id == school.id):
        raise ExportRefused("not this school's admin")  # the views answered 403/404 before
    export = export_reviews(school=school, classroom=classroom, since=since, until=until)
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="training.export",
            school=school,
            target=export.scope,
            details={"counts": export.card()["counts"], "since": str(since or ""), "until": str(until or "")},
        )
    return export
