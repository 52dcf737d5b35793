"""Real processes for end-to-end tests: the drafting worker and the ASGI server.

They run against the test database (its name is handed over in TUTOR_TEST_DB_NAME) and
the test Redis database, like production runs them: `manage.py worker`, uvicorn.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
LOGS = ROOT / "var" / "test"


def process_env(**extra: str) -> dict:
    env = dict(os.environ)
    env["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    env["TUTOR_TEST_DB_NAME"] = str(connection.settings_dict["NAME"])
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


class Proc:
    def __init__(self, name: str, args: list[str], env: dict, ready: str, timeout: float):
        LOGS.mkdir(parents=True, exist_ok=True)
        self.log_path = LOGS / f"{name}.log"
        self.log = open(self.log_path, "w")
        self.popen = subprocess.Popen(args, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                      start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready in self.log_path.read_text(errors="replace"):
                return
            if self.popen.poll() is not None:
                break
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{name} did not start; its log:\n{self.log_path.read_text(errors='replace')[-4000:]}")

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self, sig=signal.SIGKILL) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, sig)
            self.popen.wait(20)

    def stop(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


def purge_test_queue() -> None:
    """Forget tasks that earlier tests queued with no worker running."""
    from tutor.celery import app

    app.control.purge()


def start_worker(name: str = "worker", timeout: float = 300, **env: str) -> Proc:
    purge_test_queue()
    return Proc(name, [sys.executable, "manage.py", "worker", "--loglevel=INFO"], process_env(**env),
                ready=" ready.", timeout=timeout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(name: str = "server", port: int | None = None, **env: str) -> tuple[Proc, int]:
    port = port or free_port()
    args = [sys.executable, "-m", "uvicorn", "tutor.asgi:application", "--host", "127.0.0.1", "--port", str(port),
            "--ws-per-message-deflate", "false", "--no-access-log"]
    return Proc(name, args, process_env(**env), ready="Uvicorn running", timeout=60), port
