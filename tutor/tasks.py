"""Periodic housekeeping of the tutoring domain (run by the worker's beat)."""

from celery import shared_task
from django.db import close_old_connections

from tutor import services
from tutor.safeguarding import services as safeguarding


@shared_task(name="tutor.delete_expired_conversations", ignore_result=True)
def delete_expired_conversations() -> int:
    close_old_connections()
    return services.delete_expired_conversations()


@shared_task(name="tutor.escalate_safeguarding_alerts", ignore_result=True)
def escalate_safeguarding_alerts() -> int:
    """Move unacknowledged urgent alerts on to the next person, and send the alert
    e-mails that are owed (the database says which: a restart loses none)."""
    close_old_connections()
    moved = safeguarding.alerts_escalate()
    safeguarding.alert_emails_retry()
    return moved


@shared_task(name="tutor.index_course_document", ignore_result=True, acks_late=True)
def index_course_document(document_id: int, version: int) -> str:
    """Read a course document into passages (tutor.material.services.document_index)."""
    from tutor.material import services as material

    close_old_connections()
    return material.document_index(document_id=document_id, version=version)


@shared_task(name="tutor.embed_question", ignore_result=True)
def embed_question(question_id: int) -> bool:
    """A student's question's embedding, for the class's topics page (tutor.services.question_embed)."""
    close_old_connections()
    return services.question_embed(question_id=question_id)


@shared_task(name="tutor.requeue_course_documents", ignore_result=True)
def requeue_course_documents() -> int:
    from tutor.material import services as material

    close_old_connections()
    return material.documents_requeue()
