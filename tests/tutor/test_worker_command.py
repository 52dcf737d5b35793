"""`manage.py worker`, the supervisor: its children die with it, a stuck Celery worker is
killed and started again, and housekeeping never waits behind drafts."""

import os
import signal
import time
from pathlib import Path

import pytest

from tests.processes import start_worker
from tests.tutor.helpers import ask
from tutor.models import Message
from tutor.workers import READY_MESSAGE

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

FAKE = {"TUTOR_MODEL_BACKEND": "fake"}


def children_of(pid: int) -> list[int]:
    """Every descendant of `pid`, from /proc."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                kids = [int(k) for k in (task / "children").read_text().split()]
            except OSError:
                continue
            found += kids
            todo += kids
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; only its parent's bookkeeping is left


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def wait_until(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_killing_the_supervisor_kills_beat_and_both_workers():
    worker = start_worker("worker-orphans", beat=True, **FAKE)
    kids: list[int] = []
    try:
        supervisor = worker.popen.pid
        kids = wait_until(lambda: len(children_of(supervisor)) >= 3 and children_of(supervisor), 60, "three children")
        roles = sorted(command_line(pid).split("--role=")[-1].strip() for pid in kids)
        assert roles == ["beat", "drafting", "housekeeping"]
        os.kill(supervisor, signal.SIGKILL)  # no goodbye: only the kernel can tell the children
        wait_until(lambda: not any(alive(pid) for pid in kids), 30, "the children to die with their supervisor")
    finally:
        worker.stop()
        for pid in kids:  # orphans, if the test failed
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_stuck_drafting_worker_is_killed_and_started_again(student, classroom):
    worker = start_worker("worker-stuck", TUTOR_WORKER_STUCK_SECONDS="5", **FAKE)
    try:
        supervisor = worker.popen.pid
        [drafting] = [pid for pid in children_of(supervisor) if "--role=drafting" in command_line(pid)]
        os.kill(drafting, signal.SIGSTOP)  # alive, but its queue loop no longer turns
        wait_until(lambda: "it is stuck" in worker.output(), 60, "the supervisor to notice")
        wait_until(lambda: not alive(drafting), 30, "the stuck worker to be killed")
        wait_until(lambda: worker.output().count(READY_MESSAGE) >= 2, 120, "a new drafting worker to be ready")
        reply = ask(student, classroom, "Is the new worker drafting?")
        wait_until(
            lambda: Message.objects.get(pk=reply.pk).status == Message.Status.AWAITING_REVIEW,
            60,
            "the new worker to draft",
        )
    finally:
        worker.stop()


def test_housekeeping_runs_while_the_drafting_worker_is_busy(student, classmate, classroom, settings):
    settings.TUTOR_MESSAGES_PER_MINUTE = 100
    # One draft at a time, ~20 s each: the drafting worker is busy with the first question.
    env = {
        **FAKE,
        "TUTOR_MODEL_MAX_BATCH": "1",
        "TUTOR_FAKE_SECONDS_PER_TOKEN": "0.5",
        "TUTOR_RECONCILE_SECONDS": "1",
        "TUTOR_DRAFT_STUCK_SECONDS": "2",
    }
    worker = start_worker("worker-housekeeping", beat=True, **env)
    try:
        busy = ask(student, classroom, "Explain long division with three worked examples please")
        wait_until(lambda: Message.objects.get(pk=busy.pk).status == Message.Status.DRAFTING, 60, "drafting")
        waiting = ask(classmate, classroom, "What is a fraction of a fraction?")
        queued_at = Message.objects.get(pk=waiting.pk).queued_at
        # The reconciler finds the second reply queued for over 2 s and sends it again:
        # it runs on its own queue, so it need not wait for the first draft to finish.
        wait_until(
            lambda: Message.objects.get(pk=waiting.pk).queued_at > queued_at, 15, "the reconciler to run meanwhile"
        )
        assert Message.objects.get(pk=busy.pk).status == Message.Status.DRAFTING
    finally:
        worker.stop()
