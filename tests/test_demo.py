"""`bin/demo` stops cleanly when told to: SIGTERM or SIGINT to its own PID stops the web
server, the worker (with its Celery processes and beat) and the private Redis it started."""

import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.processes import ROOT, free_port
from tests.tutor.test_worker_command import alive, children_of

pytestmark = pytest.mark.e2e


def wait_until(condition, timeout, what, proc=None, log=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}; output:\n{log.read_text()[-3000:] if log else ''}")


def answers(port: int) -> bool:
    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).status == 200
    except OSError:
        return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_the_demo_stops_everything_it_started_when_told_to(tmp_path, sig):
    port, redis_port = free_port(), free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_URL", "DJANGO_SETTINGS", "TUTOR_", "CELERY_", "CHANNELS_", "PROMETHEUS"))
    }
    env.update(
        PORT=str(port),
        TUTOR_VAR_DIR=str(tmp_path / "var"),  # its own SQLite database, logs and private Redis
        REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",  # nobody answers there: it starts its own
        TUTOR_PRIVATE_REDIS_PORT=str(redis_port),
        TUTOR_MODEL_BACKEND="fake",
        CHANNELS_PREFIX=f"demo-test-{port}",
        CELERY_QUEUE=f"demo-test-{port}",
    )
    log = tmp_path / "demo.log"
    with open(log, "w") as out:
        demo = subprocess.Popen(
            ["bin/demo"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_until(lambda: answers(port), 300, "the demo's web server", demo, log)
        worker_log = tmp_path / "var" / "worker.log"
        wait_until(
            lambda: worker_log.exists() and "ready to take drafts" in worker_log.read_text(),
            300,
            "its worker",
            demo,
            log,
        )
        started = children_of(demo.pid)
        assert len(started) >= 5, started  # uvicorn, the supervisor, drafting, housekeeping, beat
        redis_pid = int((tmp_path / "var" / "redis" / "redis.pid").read_text())
        assert alive(redis_pid)
        demo.send_signal(sig)  # to its own PID only, as `kill PID` does
        demo.wait(90)
        wait_until(lambda: not any(alive(pid) for pid in started + [redis_pid]), 30, "everything to stop")
        assert not answers(port)
        assert "Stopped the private Redis" in log.read_text()
    finally:
        if demo.poll() is None:
            os.killpg(os.getpgid(demo.pid), signal.SIGKILL)
        for pid in children_of(demo.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        pid_file = Path(tmp_path / "var" / "redis" / "redis.pid")
        if pid_file.exists():
            try:
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
