"""Periodic housekeeping of the tutoring domain (run by the worker's beat)."""

from celery import shared_task
from django.db import close_old_connections

from tutor import services


@shared_task(name="tutor.delete_expired_conversations", ignore_result=True)
def delete_expired_conversations() -> int:
    close_old_connections()
    return services.delete_expired_conversations()
