"""Start the Celery worker that holds a model and drafts replies, under a supervisor.

One worker drafts with one model (`--model KEY`, a key of settings.TUTOR_MODELS; by
default the deployment's default model): it consumes that model's queue, so that a
district can run workers for a model server beside a local CPU worker. It also consumes
the main queue, for drafts sent there by an older version (handed on to their model's
queue).

The `threads` pool: one process keeps one copy of the model, and its task threads hand
their drafts to the engine's decoding thread, which batches them (see inference/tasks.py
for why not prefork). Concurrency matches the engine's batch size so that a whole class
can be drafted at once (for a model server: its concurrent requests per worker).

What runs (each a child process of this command, the supervisor):

    manage.py worker [--model KEY]    the drafting worker
    manage.py worker --beat           the drafting worker, the housekeeping worker and beat
    manage.py worker --housekeeping   the housekeeping worker and beat only (no model)

The housekeeping worker serves CELERY_HOUSEKEEPING_QUEUE (the reconciler, retention,
every periodic task), so housekeeping never waits behind drafts; it loads no model.
Beat runs as a process of its own, not inside a worker.

The supervisor starts a child again when it exits, and when it is stuck: a Celery worker
touches its alive file from inside its queue loop (tutor/workers.py); when that file has
not been touched for TUTOR_WORKER_STUCK_SECONDS while Redis has answered all that time,
the worker is killed and started again. (Celery 5.7 can log "Unrecoverable error" after a
Redis restart and then hang instead of exiting: seen in tests/faults.) A worker whose
model cannot be loaded does not exit: it stays up, says so in its log and heartbeat
("unavailable" in /readyz), and leaves its drafts owed with the reason on the teachers'
cards (inference/worker.py).

Every child dies with the supervisor, even when the supervisor is killed with SIGKILL
(PR_SET_PDEATHSIG), so that no orphaned beat goes on scheduling.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from tutor import model_settings, workers
from tutor.celery import app

SUPERVISOR_PID_ENV = "TUTOR_SUPERVISOR_PID"
ROLES = ("drafting", "housekeeping", "beat")
STOP_GRACE_SECONDS = 60  # a warm shutdown lets running drafts finish; then SIGKILL
BROKER_CHECK_SECONDS = 2.0
STARTUP_GRACE_SECONDS = 300  # a child that never showed a sign of life yet: Python starting on a busy machine


def die_with_parent() -> None:
    """Ask the kernel to SIGKILL this process when its parent dies (Linux), and exit now
    if the parent is already gone."""
    parent = os.environ.get(SUPERVISOR_PID_ENV)
    if not parent:
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: systemd's KillMode covers it there
        return
    if os.getppid() != int(parent):
        os._exit(1)


@dataclass
class Child:
    role: str
    command: list[str]
    alive_file: Path | None  # None: not watched for liveness (beat)
    popen: subprocess.Popen | None = None
    started: float = 0.0
    restarts: list[float] = field(default_factory=list)

    @property
    def name(self) -> str:
        return {"drafting": "drafting worker", "housekeeping": "housekeeping worker", "beat": "beat"}[self.role]

    def start(self, env: dict) -> None:
        if self.alive_file is not None:
            self.alive_file.unlink(missing_ok=True)  # the child creates it: its first sign of life
        self.started = time.monotonic()
        child_env = dict(env)
        if self.alive_file is not None:
            child_env[workers.ALIVE_FILE_ENV] = str(self.alive_file)
        self.popen = subprocess.Popen(self.command, env=child_env)

    def stuck(self, after: float) -> float | None:
        """Seconds the child has been silent, if that makes it stuck: its queue loop (or its
        loading) has not turned for `after` seconds; one that has not started yet gets
        STARTUP_GRACE_SECONDS to show its first sign of life. None while it is fine."""
        if self.alive_file is None:
            return None
        try:
            silent = max(0.0, time.time() - self.alive_file.stat().st_mtime)
        except FileNotFoundError:
            silent, after = time.monotonic() - self.started, max(after, STARTUP_GRACE_SECONDS)
        return silent if silent > after else None

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        if self.running():
            self.popen.kill()
            self.popen.wait(30)

    def restart_delay(self) -> float:
        """2 s, longer when the child keeps dying (five restarts in a minute: 30 s)."""
        now = time.monotonic()
        self.restarts = [t for t in self.restarts if now - t < 60] + [now]
        return 30.0 if len(self.restarts) > 5 else 2.0


class BrokerWatch:
    """Since when the broker (Redis) has answered without a break."""

    def __init__(self):
        self.up_since: float | None = None
        self.checked = 0.0

    def answering_for(self) -> float:
        now = time.monotonic()
        if now - self.checked >= BROKER_CHECK_SECONDS:
            self.checked = now
            if self._ping():
                self.up_since = self.up_since or now
            else:
                self.up_since = None
        return 0.0 if self.up_since is None else now - self.up_since

    def _ping(self) -> bool:
        url = settings.CELERY_BROKER_URL
        if not url.startswith(("redis://", "rediss://", "unix://")):
            return True  # another broker: no judgement on it
        try:
            return bool(workers.redis_client().ping())
        except Exception:
            return False


class Command(BaseCommand):
    help = "Run the drafting worker (with --beat, also the periodic housekeeping), supervised."

    def add_arguments(self, parser):
        parser.add_argument(
            "--beat", action="store_true", help="Also run beat and the housekeeping worker (one machine only)."
        )
        parser.add_argument(
            "--housekeeping", action="store_true", help="Run only beat and the housekeeping worker: no model."
        )
        parser.add_argument("--loglevel", default="INFO")
        parser.add_argument(
            "--model", default="", help="The key of the model this worker drafts with (default: the default model)."
        )
        parser.add_argument("--once", action="store_true", help="Run one child in this process, unsupervised.")
        parser.add_argument("--role", choices=ROLES, default="drafting", help="With --once: which child.")

    def handle(self, *args, **options):
        keys = [m["key"] for m in model_settings.declared_models()]
        options["model"] = options["model"] or keys[0]
        if options["model"] not in keys:
            raise CommandError(f"No model {options['model']!r} is declared: TUTOR_MODELS declares {', '.join(keys)}.")
        if options["once"]:
            die_with_parent()
            return self.run_child(options["role"], options)
        return self.supervise(options)

    # The children.

    def run_child(self, role: str, options) -> None:
        if role == "beat":
            return self.run_beat(options)
        model = options["model"]
        if role == "drafting":
            os.environ["TUTOR_WORKER_MODEL"] = model  # read by inference/worker.py as the worker starts
            queue = workers.model_queue(model)
            queues = f"{settings.CELERY_TASK_DEFAULT_QUEUE},{queue}"
            concurrency = model_settings.model_config(model)["MAX_BATCH"]
        else:
            queue = queues = settings.CELERY_HOUSEKEEPING_QUEUE
            concurrency = 2
        heartbeat = workers.start_heartbeat(model=model, role=role, queue=queue, capacity=concurrency)
        argv = [
            "worker",
            "--pool=threads",
            f"--concurrency={concurrency}",
            f"--queues={queues}",
            f"--hostname={role}-{model}-{os.getpid()}@{socket.gethostname()}",
            f"--loglevel={options['loglevel']}",
            "--without-gossip",
            "--without-mingle",
        ]
        try:
            app.worker_main(argv)
        finally:
            heartbeat.stop()

    def run_beat(self, options) -> None:
        app.Beat(loglevel=options["loglevel"], schedule=settings.CELERY_BEAT_SCHEDULE_FILENAME).run()

    # The supervisor.

    def supervise(self, options) -> None:
        roles = ["housekeeping", "beat"] if options["housekeeping"] else ["drafting"]
        if options["beat"] and not options["housekeeping"]:
            roles += ["housekeeping", "beat"]
        state_dir = Path(tempfile.mkdtemp(prefix="tutor-worker-"))
        base = [
            sys.executable,
            sys.argv[0],
            "worker",
            "--once",
            f"--loglevel={options['loglevel']}",
            f"--model={options['model']}",
        ]
        children = [
            Child(role, base + [f"--role={role}"], None if role == "beat" else state_dir / f"{role}.alive")
            for role in roles
        ]
        env = dict(os.environ, **{SUPERVISOR_PID_ENV: str(os.getpid())})
        stuck_after = settings.TUTOR_WORKER_STUCK_SECONDS
        broker = BrokerWatch()
        stopping: list[int] = []

        def on_signal(signum, frame):
            stopping.append(signum)

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        due: dict[str, float] = {}  # role -> when to start it again
        try:
            for child in children:
                child.start(env)
            while not stopping:
                time.sleep(0.5)
                broker_up_for = broker.answering_for()  # checked all along, not only once a child is silent
                for child in children:
                    if stopping:
                        break
                    if child.popen is None:
                        if time.monotonic() >= due.get(child.role, 0):
                            child.start(env)
                        continue
                    code = child.popen.poll()
                    if code is not None:
                        delay = child.restart_delay()
                        self.stderr.write(
                            f"The {child.name} stopped (exit {code}); starting it again in {delay:.0f} s."
                        )
                        child.popen = None
                        due[child.role] = time.monotonic() + delay
                        continue
                    silent = child.stuck(stuck_after)
                    if silent is not None and broker_up_for > stuck_after:
                        self.stderr.write(
                            f"The {child.name} (pid {child.popen.pid}) has shown no sign of life for {silent:.0f} s "
                            f"while Redis answers: it is stuck. Killing it and starting it again."
                        )
                        child.kill()
                        child.restarts.append(time.monotonic())
                        child.start(env)
            self.stop_all(children, stopping[0])
        finally:
            for child in children:
                child.kill()
            for path in state_dir.iterdir():
                path.unlink(missing_ok=True)
            state_dir.rmdir()

    def stop_all(self, children: list[Child], signum: int) -> None:
        """Ask each child for a warm shutdown (SIGTERM: running drafts finish; a Ctrl+C
        reached them already, and a second SIGINT would make Celery stop cold), then wait;
        SIGKILL whatever is still running after STOP_GRACE_SECONDS."""
        for child in children:
            if child.running():
                child.popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for child in children:
            if child.popen is None:
                continue
            try:
                child.popen.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.stderr.write(f"The {child.name} did not stop in {STOP_GRACE_SECONDS} s: killing it.")
                child.kill()
