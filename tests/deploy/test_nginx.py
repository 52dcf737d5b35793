"""The production topology, for real: Debian's nginx with a self-signed certificate, from
deploy/nginx/tutor.conf, in front of two uvicorn processes with the production settings,
and a worker. A student signs in and asks over wss://, the teacher signs in and approves
over https://, the student receives the text. Secure cookies, X-Forwarded-Proto and CSRF
trusted origins all have to work behind the proxy for that to pass."""

import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from urllib.parse import urlencode

import pytest
from websockets.sync.client import connect

from tests.processes import LOGS, ROOT, free_port, process_env, start_server, start_worker
from tutor import services
from tutor.models import Message

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

QUESTION = "NGINX-QUESTION how do I solve 3x + 2 = 11?"
FINAL = "Subtract 2 from both sides first: what is left?"
METRICS_TOKEN = "nginx-test-metrics-token-71b"


def replace_once(text: str, old: str, new: str) -> str:
    assert old in text, f"{old!r} is no longer in deploy/nginx/tutor.conf: update this test"
    return text.replace(old, new)


def site_config(folder, https_port, http_port, web_ports, static_root) -> str:
    """deploy/nginx/tutor.conf with this test's ports, name and paths."""
    text = (ROOT / "deploy" / "nginx" / "tutor.conf").read_text()
    for old, new in (
        ("listen 443 ssl http2;", f"listen {https_port} ssl http2;"),
        ("listen [::]:443 ssl http2;", ""),
        ("listen 80;", f"listen {http_port};"),
        ("listen [::]:80;", ""),
        ("server_name tutor.example.org;", "server_name localhost;"),
        ("/etc/ssl/tutor/fullchain.pem", f"{folder}/cert.pem"),
        ("/etc/ssl/tutor/privkey.pem", f"{folder}/key.pem"),
        ("/var/lib/tutor/staticfiles/", f"{static_root}/"),
        ("/var/log/nginx/tutor.access.log", f"{folder}/access.log"),
        ("server 127.0.0.1:8001 ", f"server 127.0.0.1:{web_ports[0]} "),
        ("server 127.0.0.1:8002 ", f"server 127.0.0.1:{web_ports[1]} "),
    ):
        text = replace_once(text, old, new)
    return text


def main_config(folder) -> str:
    """A minimal nginx.conf of the test's own around the site (Debian's would be the same)."""
    return f"""
user root;
worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 256; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    sendfile on;
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    include {folder}/site.conf;
}}
"""


def self_signed_certificate(folder) -> None:
    subprocess.run(
        [
            "openssl", "req", "-x509", "-nodes", "-days", "2",
            "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-keyout", f"{folder}/key.pem", "-out", f"{folder}/cert.pem",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip


def wait_for_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on {port}")


class Browser:
    """A person's browser over https:// through nginx: cookies, CSRF, the login form."""

    def __init__(self, port: int, tls: ssl.SSLContext):
        self.port, self.tls = port, tls
        self.origin = f"https://localhost:{port}"
        self.cookies: dict[str, str] = {}
        self.cookie_flags: dict[str, str] = {}

    def request(self, method, path, fields=None, headers=None):
        connection = http.client.HTTPSConnection("localhost", self.port, context=self.tls, timeout=30)
        sent = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items()), **(headers or {})}
        body = None
        if method == "POST":
            sent.update(
                {
                    "Content-Type": "application/x-www-form-urlencoded",
                    "Origin": self.origin,
                    "Referer": f"{self.origin}{path}",
                    "X-CSRFToken": self.cookies.get("csrftoken", ""),
                }
            )
            body = urlencode(fields or {})
        connection.request(method, path, body=body, headers=sent)
        response = connection.getresponse()
        for name, value in response.getheaders():
            if name.lower() == "set-cookie":
                pair, _, flags = value.partition(";")
                key, _, val = pair.partition("=")
                self.cookies[key.strip()] = val.strip()
                self.cookie_flags[key.strip()] = flags
        return response, response.read()

    def sign_in(self, username: str, password: str) -> None:
        response, page = self.request("GET", "/accounts/login/")
        assert response.status == 200, page[:500]
        token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1).decode()
        response, page = self.request(
            "POST", "/accounts/login/", {"username": username, "password": password, "csrfmiddlewaretoken": token}
        )
        assert response.status == 302, page[:800]
        assert "sessionid" in self.cookies


@pytest.fixture
def topology(tmp_path, django_db_setup):
    if not shutil.which("nginx"):
        if os.environ.get("CI"):
            pytest.fail("nginx is missing: .ci/run installs it (apt-get install nginx)")
        pytest.skip("nginx is not installed (apt-get install nginx)")
    folder = tmp_path
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (folder / sub).mkdir()
    self_signed_certificate(folder)
    https_port, http_port = free_port(), free_port()
    var = folder / "var"
    env = {
        "TUTOR_ENV": "production",
        "SECRET_KEY": "nginx-topology-test-" + "k7Qw9zX2" * 6,
        "ALLOWED_HOSTS": "localhost",
        "CSRF_TRUSTED_ORIGINS": f"https://localhost:{https_port}",
        "TUTOR_VAR_DIR": str(var),
        "TUTOR_MODEL_BACKEND": "fake",
        "METRICS_TOKEN": METRICS_TOKEN,
        "LOG_FORMAT": "json",
    }
    collected = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=process_env(**env),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert collected.returncode == 0, collected.stderr
    processes = []
    try:
        web_ports = []
        for n in range(2):
            server, port = start_server(f"server-nginx-{n}", **env)
            processes.append(server)
            web_ports.append(port)
        processes.append(start_worker("worker-nginx", **env))
        (folder / "site.conf").write_text(site_config(folder, https_port, http_port, web_ports, var / "staticfiles"))
        (folder / "nginx.conf").write_text(main_config(folder))
        checked = subprocess.run(["nginx", "-t", "-c", f"{folder}/nginx.conf"], capture_output=True, text=True)
        assert checked.returncode == 0, checked.stderr
        log = open(LOGS / "nginx.log", "w")
        nginx = subprocess.Popen(
            ["nginx", "-c", f"{folder}/nginx.conf", "-g", "daemon off;"], stdout=log, stderr=subprocess.STDOUT
        )
        try:
            wait_for_port(https_port)
            tls = ssl.create_default_context(cafile=str(folder / "cert.pem"))
            yield {"https": https_port, "http": http_port, "tls": tls, "folder": folder}
        finally:
            nginx.send_signal(signal.SIGQUIT)
            try:
                nginx.wait(20)
            except subprocess.TimeoutExpired:
                nginx.kill()
            log.close()
    finally:
        for process in processes:
            process.stop()


def test_the_core_loop_through_nginx_tls_and_two_uvicorn_processes(topology, student, teacher, classroom):
    port, tls = topology["https"], topology["tls"]
    conversation = services.conversation_start(student=student, classroom=classroom)

    pupil = Browser(port, tls)
    pupil.sign_in(student.username, "pass-word-123")
    for name in ("sessionid", "csrftoken"):
        assert "secure" in pupil.cookie_flags[name].lower(), (name, pupil.cookie_flags[name])
    assert "httponly" in pupil.cookie_flags["sessionid"].lower()
    response, page = pupil.request("GET", f"/conversations/{conversation.id}/")
    assert response.status == 200, page[:500]
    assert response.getheader("Strict-Transport-Security"), "Django saw https (X-Forwarded-Proto) and sent HSTS"

    teacher_browser = Browser(port, tls)
    teacher_browser.sign_in(teacher.username, "pass-word-123")
    teacher_browser.request("GET", "/review/")  # the page a teacher opens; sets the CSRF cookie

    def wss(path, browser):
        return connect(
            f"wss://localhost:{port}{path}",
            ssl=tls,
            additional_headers={
                "Cookie": "; ".join(f"{k}={v}" for k, v in browser.cookies.items()),
                "Origin": browser.origin,
            },
            open_timeout=20,
        )

    with wss(f"/ws/chat/{conversation.id}/", pupil) as chat, wss("/ws/review/", teacher_browser) as review:
        chat.send(json.dumps({"type": "ask", "text": QUESTION, "client_id": "nginx-1"}))
        first = json.loads(chat.recv(timeout=30))
        assert first["type"] == "messages" and [m["state"] for m in first["messages"]] == ["sent", "reviewing"]
        review.send(json.dumps({"type": "sync"}))
        drafted = None
        deadline = time.monotonic() + 120
        while drafted is None and time.monotonic() < deadline:
            frame = json.loads(review.recv(timeout=120))
            if frame["type"] == "reply" and frame["reply"]["status"] == "awaiting_review":
                drafted = frame["reply"]
        assert drafted, "the draft reached the teacher's socket through nginx"

        response, body = teacher_browser.request(
            "POST", f"/review/{drafted['id']}/approve/", {"text": FINAL}, headers={"Accept": "application/json"}
        )
        assert response.status == 200, body[:800]
        received = []
        deadline = time.monotonic() + 60
        while FINAL not in received and time.monotonic() < deadline:
            frame = json.loads(chat.recv(timeout=60))
            received += [m["text"] for m in frame.get("messages", []) if m["state"] == "answered"]
        assert received == [FINAL]
        assert Message.objects.get(pk=drafted["id"]).final_text == FINAL

        # Every process counts into one set of figures: the worker's drafting speed, a
        # server's approval, the sockets open now.
        response, text = teacher_browser.request(
            "GET", "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
        )
        assert response.status == 200
        figures = text.decode()
        assert re.search(r'tutor_generation_tokens_per_second_count\{model="local",worker="[^"]+"\} [1-9]', figures)
        assert re.search(r'tutor_ask_to_approved_seconds_count\{decision="edited"\} [1-9]', figures)
        assert re.search(r'tutor_open_sockets\{kind="chat"\} [1-9]', figures)

    # The proxy itself: plain http goes to https; static files come from nginx, not Django.
    plain = http.client.HTTPConnection("127.0.0.1", topology["http"], timeout=10)
    plain.request("GET", "/review/", headers={"Host": "localhost"})
    redirect = plain.getresponse()
    assert redirect.status == 301 and redirect.getheader("Location") == "https://localhost/review/"
    response, css = pupil.request("GET", "/static/tutor/site.css")
    assert response.status == 200 and b"--ink" in css
    assert response.getheader("X-Request-ID") is None and response.getheader("Expires")
    # nginx's request id reaches Django, which sends it back: one id in both logs.
    response, _ = teacher_browser.request("GET", "/review/")
    request_id = response.getheader("X-Request-ID") or ""
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    access_log = topology["folder"] / "access.log"
    deadline = time.monotonic() + 15  # nginx writes the line once the answer is sent
    while f"id={request_id}" not in access_log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    access = access_log.read_text()
    assert f"id={request_id}" in access and "/ws/chat/" in access
