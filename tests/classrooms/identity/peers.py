"""The real other sides of each protocol, started on loopback by the tests.

- `OpenIDProvider`: oidc-provider-mock (authlib) in a thread: discovery, JWKS, a real
  authorization-code flow with signed ID tokens, userinfo, RP-initiated logout.
- `CasServer`: django-cas-server (a CAS 3.0 server) as its own small Django process, with
  its own SQLite database: login form, /p3/serviceValidate, single sign-out POSTs.
- `LtiPlatform`: an LTI 1.3 platform built on lti1p3platform, in a thread: dynamic
  registration, OIDC auth endpoint that signs launches with its own RSA key, JWKS, the
  OAuth2 token endpoint (checks the tool's signed assertion against the tool's JWKS),
  Names and Role Provisioning, and the deep-linking return address.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from html import unescape
from pathlib import Path

import requests
import werkzeug.serving

ROOT = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def form_of(html: str, form_id: str = "") -> tuple[str, dict[str, str]]:
    """The action and fields of a page's form (the first, or the one with `form_id`), as a
    browser would post them."""
    if form_id:
        html = re.search(rf'<form[^>]*id="{form_id}".*?</form>', html, re.S).group(0)
    found = re.search(r'<form[^>]*action="([^"]*)"', html)
    action = unescape(found.group(1)) if found else ""
    fields = {
        unescape(name): unescape(value)
        for name, value in re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', html)
    }
    return action, fields


@contextlib.contextmanager
def threaded(app, host: str = "127.0.0.1"):
    server = werkzeug.serving.make_server(host, 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        thread.join(5)
        server.server_close()


# OpenID Connect


class OpenIDProvider:
    """oidc-provider-mock, with clients registered and people set up through its own API."""

    def __init__(self, server):
        self.server = server
        self.issuer = f"http://localhost:{server.server_port}"

    def register_client(self, redirect_uri: str) -> tuple[str, str]:
        answer = requests.post(
            self.issuer + "/oauth2/clients",
            json={"redirect_uris": [redirect_uri], "token_endpoint_auth_method": "client_secret_basic"},
            timeout=10,
        )
        answer.raise_for_status()
        return answer.json()["client_id"], answer.json()["client_secret"]

    def set_person(self, sub: str, **claims) -> None:
        requests.put(f"{self.issuer}/users/{sub}", json=claims, timeout=10).raise_for_status()

    def sign_in(self, authorize_url: str, sub: str) -> str:
        """The person signs in at the provider; returns where it sends the browser back."""
        answer = requests.post(authorize_url, data={"sub": sub}, allow_redirects=False, timeout=10)
        assert answer.status_code == 302, answer.text[:500]
        return answer.headers["Location"]


@contextlib.contextmanager
def openid_provider():
    from oidc_provider_mock import run_server_in_thread

    with run_server_in_thread(require_client_registration=True, require_nonce=True) as server:
        yield OpenIDProvider(server)


# CAS

CAS_SETTINGS = """
import os
SECRET_KEY = "cas-peer-test-only"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["django.contrib.auth", "django.contrib.contenttypes", "django.contrib.sessions",
                  "django.contrib.messages", "cas_server"]
MIDDLEWARE = ["django.contrib.sessions.middleware.SessionMiddleware",
              "django.middleware.csrf.CsrfViewMiddleware",
              "django.contrib.auth.middleware.AuthenticationMiddleware",
              "django.contrib.messages.middleware.MessageMiddleware"]
ROOT_URLCONF = "cas_peer_urls"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["CAS_PEER_DB"]}}
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True,
              "OPTIONS": {"context_processors": ["django.template.context_processors.request",
                          "django.contrib.auth.context_processors.auth",
                          "django.contrib.messages.context_processors.messages"]}}]
STATIC_URL = "/static/"
USE_TZ = True
CAS_AUTH_CLASS = "cas_server.auth.DjangoAuthUser"
CAS_NEW_VERSION_HTML_WARNING = False
CAS_NEW_VERSION_EMAIL_WARNING = False
CAS_SHOW_SERVICE_MESSAGES = False
CAS_SLO_TIMEOUT = 5
"""
CAS_URLS = """
from django.urls import include, path
urlpatterns = [path("cas/", include("cas_server.urls", namespace="cas_server"))]
"""
CAS_START = """
import os, sys, django
from django.core.management import call_command
django.setup()
call_command("migrate", verbosity=0)
from django.contrib.auth.models import User
from cas_server.models import ServicePattern, ReplaceAttributName
import json
for login, (password, attributes) in json.loads(os.environ["CAS_PEER_PEOPLE"]).items():
    User.objects.create_user(login, password=password, first_name=attributes.get("first_name", ""),
                             last_name=attributes.get("last_name", ""), email=attributes.get("email", ""),
                             is_staff=attributes.get("is_staff", False))
pattern = ServicePattern.objects.create(pos=0, name="tutor", pattern=os.environ["CAS_PEER_SERVICE"],
                                        single_log_out=True)
for name in ("first_name", "last_name", "email", "username", "is_staff"):
    ReplaceAttributName.objects.create(name=name, service_pattern=pattern)
from django.core.servers.basehttp import run
from django.core.wsgi import get_wsgi_application
run("127.0.0.1", int(sys.argv[1]), get_wsgi_application(), threading=True)
"""


class CasServer:
    def __init__(self, base: str):
        self.base = base
        self.url = base + "/cas"

    def sign_in(self, browser: requests.Session, login_url: str, username: str, password: str) -> str:
        """Fill the CAS login form; returns where the CAS server sends the browser back."""
        page = browser.get(login_url, timeout=10)
        page.raise_for_status()
        action, fields = form_of(page.text)
        fields.update({"username": username, "password": password})
        answer = browser.post(
            requests.compat.urljoin(page.url, action) if action else page.url,
            data=fields,
            allow_redirects=False,
            timeout=10,
        )
        assert answer.status_code == 302, answer.text[:800]
        return answer.headers["Location"]

    def sign_out(self, browser: requests.Session) -> requests.Response:
        return browser.get(self.url + "/logout", timeout=15)


@contextlib.contextmanager
def cas_server(*, service_pattern: str, people: dict):
    """A django-cas-server process; `people` = {login: (password, {first_name, last_name, email})}."""
    workdir = Path(tempfile.mkdtemp(prefix="cas-peer-"))
    (workdir / "cas_peer_settings.py").write_text(CAS_SETTINGS)
    (workdir / "cas_peer_urls.py").write_text(CAS_URLS)
    (workdir / "start.py").write_text(CAS_START)
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(workdir),
        "DJANGO_SETTINGS_MODULE": "cas_peer_settings",
        "CAS_PEER_DB": str(workdir / "cas.sqlite3"),
        "CAS_PEER_SERVICE": service_pattern,
        "CAS_PEER_PEOPLE": json.dumps(people),
    }
    log = open(workdir / "cas.log", "w")
    process = subprocess.Popen([sys.executable, str(workdir / "start.py"), str(port)], env=env, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError("the CAS server died: " + (workdir / "cas.log").read_text()[-2000:])
            try:
                if requests.get(base + "/cas/login", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the CAS server did not start: " + (workdir / "cas.log").read_text()[-2000:])
            time.sleep(0.1)
        yield CasServer(base)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


# LTI 1.3


def lti_platform_app(platform: LtiPlatformPeer):
    import flask
    from lti1p3platform.ltiplatform import LTI1P3PlatformConfAbstract
    from lti1p3platform.message_launch import LTIAdvantageMessageLaunchAbstract

    app = flask.Flask("lti-platform-peer")

    class Conf(LTI1P3PlatformConfAbstract):
        def init_platform_config(self, **kwargs):
            self._registration = kwargs["registration"]

        def get_registration_by_params(self, **kwargs):
            return self._registration

    class Request:
        def __init__(self, data):
            self.get_data = data
            self.form_data = {}

    class Launch(LTIAdvantageMessageLaunchAbstract):
        def render_launch_form(self, launch_data, **kwargs):
            return launch_data

        def generate_launch_request(self):
            data = super().generate_launch_request()
            if platform.tamper is not None:
                data = platform.tamper(data)
            return data

    def _bearer():
        header = flask.request.headers.get("Authorization", "")
        return header[7:] if header.startswith("Bearer ") else ""

    @app.get("/.well-known/openid-configuration")
    def configuration():
        if _bearer() not in platform.registration_tokens:
            return "unknown registration token", 401
        return flask.jsonify(platform.openid_configuration())

    @app.post("/register")
    def register():
        if _bearer() not in platform.registration_tokens:
            return "unknown registration token", 401
        platform.registration_tokens.discard(_bearer())
        body = flask.request.get_json()
        client_id = "client-" + uuid.uuid4().hex[:8]
        deployment_id = str(len(platform.tools) + 1)
        platform.tools[client_id] = {
            "login_url": body["initiate_login_uri"],
            "redirect_uris": body["redirect_uris"],
            "jwks_uri": body["jwks_uri"],
            "launch_url": body["https://purl.imsglobal.org/spec/lti-tool-configuration"]["target_link_uri"],
            "deployment_id": deployment_id,
            "scope": body.get("scope", ""),
        }
        return flask.jsonify(
            {
                **body,
                "client_id": client_id,
                "https://purl.imsglobal.org/spec/lti-tool-configuration": {
                    **body["https://purl.imsglobal.org/spec/lti-tool-configuration"],
                    "deployment_id": deployment_id,
                },
            }
        )

    @app.get("/jwks")
    def jwks():
        return flask.jsonify({"keys": [platform.public_jwk()]})

    @app.route("/auth", methods=["GET", "POST"])
    def auth():
        params = dict(flask.request.values)
        tool = platform.tools.get(params.get("client_id", ""))
        if tool is None:
            return "unknown client", 400
        if params.get("redirect_uri") not in tool["redirect_uris"]:
            return "invalid redirect_uri", 400
        message = json.loads(params.get("lti_message_hint") or "{}")
        person = platform.people[params["login_hint"]]
        registration = platform.registration_for(params["client_id"], message.get("deployment_id"))
        launch = Launch(Request(params), Conf(registration=registration))
        course = platform.courses[message["context"]]
        launch.set_user_data(
            person["sub"],
            person["roles_by_course"].get(message["context"], []),
            full_name=person.get("name"),
            email_address=person.get("email"),
        )
        launch.set_extra_claims({"given_name": person.get("given_name"), "family_name": person.get("family_name")})
        launch.set_launch_context_claim(
            message["context"], context_title=course["title"], context_label=course["label"]
        )
        launch.set_nrps(f"{platform.issuer}/nrps/{message['context']}")
        if message.get("custom"):
            launch.set_custom_parameters_claim(message["custom"])
        if message.get("kind") == "deep_link":
            registration.set_deeplink_launch_url(tool["launch_url"])
            launch.set_dl(f"{platform.issuer}/deep-link-return", title="Add", accept_types={"ltiResourceLink"})
        else:
            launch.set_resource_link_claim(message.get("resource_link", "rl-1"), title="Tutor")
        data = launch.lti_launch()
        return (
            f'<form method="post" action="{data["launch_url"]}">'
            f'<input type="hidden" name="id_token" value="{data["id_token"]}">'
            f'<input type="hidden" name="state" value="{data["state"]}"></form>'
        )

    @app.post("/token")
    def token():
        form = dict(flask.request.form)
        for client_id in platform.tools:
            registration = platform.registration_for(client_id)
            try:
                answer = Conf(registration=registration).get_access_token(form)
            except Exception as error:  # wrong key or client: try the next, else refuse
                last = error
                continue
            platform.tokens_issued += 1
            return flask.jsonify(answer)
        return flask.jsonify({"error": "invalid_client", "error_description": str(last)}), 401

    @app.get("/nrps/<context>")
    def nrps(context):
        token = _bearer()
        ok = False
        for client_id in platform.tools:
            try:
                ok = Conf(registration=platform.registration_for(client_id)).validate_token(
                    token, allowed_scopes=["https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"]
                )
            except Exception:
                continue
            if ok:
                break
        if not ok:
            return "bad token", 401
        course = platform.courses[context]
        members = [
            {
                "user_id": p["sub"],
                "name": p.get("name"),
                "given_name": p.get("given_name"),
                "family_name": p.get("family_name"),
                "email": p.get("email"),
                "roles": p["roles_by_course"][context],
                "status": p.get("status", "Active"),
            }
            for p in platform.people.values()
            if context in p["roles_by_course"]
        ]
        response = flask.jsonify(
            {"id": flask.request.url, "context": {"id": context, "title": course["title"]}, "members": members}
        )
        response.headers["Content-Type"] = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"
        return response

    @app.post("/deep-link-return")
    def deep_link_return():
        client_id = next(iter(platform.tools))
        items = Conf(registration=platform.registration_for(client_id)).validate_deeplinking_resp(
            dict(flask.request.form)
        )
        platform.deep_linked.extend(items)
        return "added"

    return app


class LtiPlatformPeer:
    """A Moodle-like platform: people, courses (with roles), and registered tools."""

    INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
    LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"

    def __init__(self):
        from jwcrypto.jwk import JWK

        key = JWK.generate(kty="RSA", size=2048)
        self.private_pem = key.export_to_pem(private_key=True, password=None).decode()
        self.public_pem = key.export_to_pem().decode()
        self.signing_pem = self.private_pem  # a test may sign with another key
        self.issuer = ""
        self.tools: dict[str, dict] = {}
        self.people: dict[str, dict] = {}
        self.courses: dict[str, dict] = {}
        self.registration_tokens: set[str] = set()
        self.deep_linked: list[dict] = []
        self.tokens_issued = 0
        self.tamper = None  # a function over {"id_token", "state"}, for bad-input tests

    def openid_configuration(self) -> dict:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": self.issuer + "/auth",
            "token_endpoint": self.issuer + "/token",
            "jwks_uri": self.issuer + "/jwks",
            "registration_endpoint": self.issuer + "/register",
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "scopes_supported": ["openid", "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly"],
            "https://purl.imsglobal.org/spec/lti-platform-configuration": {
                "product_family_code": "moodle",
                "version": "4.5",
                "messages_supported": [{"type": "LtiResourceLinkRequest"}, {"type": "LtiDeepLinkingRequest"}],
            },
        }

    def public_jwk(self) -> dict:
        from lti1p3platform.registration import Registration

        return Registration.get_jwk(self.public_pem)

    def registration_for(self, client_id: str, deployment_id: str | None = None):
        from lti1p3platform.registration import Registration

        tool = self.tools[client_id]
        registration = Registration()
        registration.set_iss(self.issuer).set_client_id(client_id)
        registration.set_deployment_id(deployment_id or tool["deployment_id"])
        registration.set_launch_url(tool["launch_url"]).set_oidc_login_url(tool["login_url"])
        registration.set_platform_public_key(self.public_pem).set_platform_private_key(self.signing_pem)
        registration.set_tool_key_set_url(tool["jwks_uri"])
        return registration

    def new_registration_token(self) -> str:
        token = uuid.uuid4().hex
        self.registration_tokens.add(token)
        return token

    def registration_url(self, tool_register_url: str) -> str:
        """What Moodle opens when its admin pastes the tool's registration address."""
        from urllib.parse import urlencode

        query = {
            "openid_configuration": self.issuer + "/.well-known/openid-configuration",
            "registration_token": self.new_registration_token(),
        }
        return tool_register_url + ("&" if "?" in tool_register_url else "?") + urlencode(query)

    def add_course(self, context: str, title: str) -> None:
        self.courses[context] = {"title": title, "label": title[:10]}

    def add_person(self, sub: str, given: str, family: str, *, email: str = "", **roles_by_course) -> dict:
        person = {
            "sub": sub,
            "given_name": given,
            "family_name": family,
            "name": f"{given} {family}",
            "email": email,
            "roles_by_course": {},
        }
        self.people[sub] = person
        return person

    def enrol(self, sub: str, context: str, role: str) -> None:
        self.people[sub]["roles_by_course"][context] = [role]

    def unenrol(self, sub: str, context: str) -> None:
        self.people[sub]["roles_by_course"].pop(context, None)

    def launch(
        self,
        browser: requests.Session,
        sub: str,
        context: str,
        *,
        kind: str = "resource",
        client_id: str | None = None,
        deployment_id: str | None = None,
        custom: dict | None = None,
        replay: list | None = None,
    ) -> requests.Response:
        """A person opens the tool from a course, as a browser in the platform's frame would:
        login initiation → (cookie check page) → the platform's auth endpoint → the launch."""
        client_id = client_id or next(iter(self.tools))
        tool = self.tools[client_id]
        hint = {"kind": kind, "context": context, "resource_link": f"rl-{context}", "custom": custom or {}}
        if deployment_id:
            hint["deployment_id"] = deployment_id
        params = {
            "iss": self.issuer,
            "login_hint": sub,
            "target_link_uri": tool["launch_url"],
            "lti_message_hint": json.dumps(hint),
            "client_id": client_id,
            "lti_deployment_id": deployment_id or tool["deployment_id"],
        }
        check = browser.get(tool["login_url"], params=params, timeout=10)
        assert check.status_code == 200, check.text[:500]
        continue_url = unescape(re.search(r'data-continue="([^"]+)"', check.text).group(1))
        to_platform = browser.get(requests.compat.urljoin(check.url, continue_url), allow_redirects=False, timeout=10)
        assert to_platform.status_code == 302, to_platform.text[:500]
        form = browser.get(to_platform.headers["Location"], timeout=10)
        assert form.status_code == 200, form.text[:500]
        action, fields = form_of(form.text)
        if replay is not None:
            replay.append((action, dict(fields)))
        return browser.post(action, data=fields, allow_redirects=False, timeout=20)


@contextlib.contextmanager
def lti_platform():
    platform = LtiPlatformPeer()
    with threaded(lti_platform_app(platform)) as server:
        platform.issuer = f"http://127.0.0.1:{server.server_port}"
        yield platform
