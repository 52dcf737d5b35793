"""The Celery app. The web process only sends tasks by name; the worker imports the task
modules (`include`) and with them the model runtime."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tutor.settings")

app = Celery(
    "tutor",
    include=["inference.worker", "inference.tasks", "inference.training", "tutor.tasks", "classrooms.identity.tasks"],
)
app.config_from_object("django.conf:settings", namespace="CELERY")


def _wire() -> None:
    from tutor.logs import connect_celery_signals
    from tutor.workers import QueueLoopHeartbeat

    connect_celery_signals()  # the request id travels with each task
    app.steps["consumer"].add(QueueLoopHeartbeat)  # the supervisor's sign of life


_wire()
