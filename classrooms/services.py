"""Writes for schools, classes and people."""

from __future__ import annotations

from classrooms.models import AuditEntry, School, User


def audit_record(*, actor: User | None, action: str, school: School | None, target: str = "", details: dict | None = None) -> AuditEntry:
    """Add one line to the school's audit log (call inside the transaction of the change)."""
    return AuditEntry.objects.create(
        school=school,
        actor=actor,
        actor_name=(actor.get_username() if actor else "system"),
        action=action,
        target=target[:200],
        details=details or {},
    )
