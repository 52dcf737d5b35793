"""Alert escalation on the real Celery beat, across a worker killed with SIGKILL: what the
database says is owed (an alert whose delay ran out, an e-mail that failed) is sent by
the next worker, to a real SMTP server on loopback."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from classrooms.models import SafeguardingContact
from tests.conftest import make_person
from tests.processes import start_worker
from tests.tutor.helpers import SmtpInbox, ask
from tutor.models import AlertNotice, SafeguardingAlert

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def wait_until(condition, timeout=90, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def make_owed(alert: SafeguardingAlert) -> None:
    """The delay ran out while no worker was running, and its e-mails had failed."""
    # This process sent them at once (to its locmem outbox): let that finish first.
    wait_until(
        lambda: not AlertNotice.objects.filter(alert=alert, state__in=("pending", "sending")).exists(),
        what="this process's own sends",
    )
    past = timezone.now() - timedelta(seconds=1)
    SafeguardingAlert.objects.filter(pk=alert.pk).update(next_step_at=past)
    AlertNotice.objects.filter(alert=alert, channel="email").exclude(state="no_address").update(
        state="failed", attempts=1, next_try_at=past
    )


def emails_sent(alert: SafeguardingAlert) -> bool:
    owed = AlertNotice.objects.filter(alert=alert, channel="email").exclude(state__in=("sent", "no_address"))
    return not owed.exists()


def test_escalation_runs_on_beat_and_what_is_owed_survives_a_killed_worker(
    student, classmate, teacher, safeguarding_lead, classroom, settings
):
    inbox = SmtpInbox()
    nurse = make_person("nurse", classroom.school, first_name="Inès", email="nurse@school.test")
    SafeguardingContact.objects.create(school=classroom.school, person=nurse, title="School nurse", position=1)
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"  # this process sends nothing
    env = {
        "TUTOR_MODEL_BACKEND": "fake",
        "TUTOR_ALERT_CHECK_SECONDS": "1",
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(inbox.port),
    }
    try:
        worker = start_worker("worker-alerts-1", beat=True, **env)
        try:
            first = ask(student, classroom, "je veux en finir").in_reply_to.safeguarding_alert
            make_owed(first)
            wait_until(lambda: SafeguardingAlert.objects.get(pk=first.pk).step == 1, what="beat to escalate")
            assert AlertNotice.objects.filter(alert=first, person=nurse, channel="app").exists()
            wait_until(lambda: emails_sent(first), what="the first alert's e-mails")
        finally:
            worker.kill()  # SIGKILL: beat and worker gone at once

        second = ask(classmate, classroom, "I'm going to bring a knife and hurt him").in_reply_to.safeguarding_alert
        make_owed(second)  # owed while nobody runs
        worker = start_worker("worker-alerts-2", beat=True, **env)
        try:
            wait_until(lambda: SafeguardingAlert.objects.get(pk=second.pk).step == 1, what="the owed escalation")
            wait_until(lambda: emails_sent(second), what="the owed e-mails")
        finally:
            worker.stop()
        sent_to = sorted(m["To"] for m in inbox.wait_for(4))
        assert sent_to == ["cpe@school.test", "cpe@school.test", "nurse@school.test", "nurse@school.test"]
    finally:
        inbox.stop()
