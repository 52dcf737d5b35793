"""Real browsers against the real stack: Chromium (Debian's, driven by Playwright) on
the ASGI server (uvicorn), the Celery worker with the model, Redis and the test database.

One server, one worker and one browser for the whole browser suite (package scope: they
stop before other end-to-end tests start theirs, so two models never share the CPUs).
The worker uses the configured model (the real one) unless the environment says
otherwise, e.g. TUTOR_MODEL_BACKEND=fake TUTOR_FAKE_SECONDS_PER_TOKEN=0.03 for a quick run.
"""

from __future__ import annotations

import os
import shutil
import threading

import pytest

from tests.browser.pages import CHROMIUM, Session
from tests.processes import start_server, start_worker


def pytest_collection_modifyitems(config, items):
    if shutil.which(CHROMIUM) or os.path.exists(CHROMIUM):
        return
    skip = pytest.mark.skip(reason=f"no Chromium at {CHROMIUM}: apt-get install -y chromium")
    for item in items:
        if "tests/browser/" in str(item.fspath):
            item.add_marker(skip)


class _WorkerStart(threading.Thread):
    """Starts the worker in the background: the model loads while the first tests, which
    need no model, already run."""

    def __init__(self):
        super().__init__(name="browser-worker-start", daemon=True)
        self.worker = None
        self.error: BaseException | None = None

    def run(self):
        try:
            self.worker = start_worker("browser-worker", timeout=600, DJANGO_ALLOW_ASYNC_UNSAFE="")
        except BaseException as exc:  # reported by the first test that needs the worker
            self.error = exc


@pytest.fixture(scope="package", autouse=True)
def _worker_start(request, django_db_setup):
    wanted = any("browser_worker" in getattr(item, "fixturenames", ()) for item in request.session.items)
    if not wanted:
        yield None
        return
    start = _WorkerStart()
    start.start()
    yield start
    start.join()
    if start.worker is not None:
        start.worker.stop()


@pytest.fixture(scope="package")
def browser_worker(_worker_start):
    _worker_start.join()
    if _worker_start.error is not None:
        raise _worker_start.error
    return _worker_start.worker


@pytest.fixture(autouse=True)
def _drafts_stay_with_the_test(request, monkeypatch):
    """A test that drafts its replies itself (a scripted model, tests.tutor.helpers.draft)
    keeps the questions it asks from this process away from the suite's worker, which
    would otherwise race it for them ("not owed"). Tests that take `browser_worker` feed it.
    """
    if "browser_worker" not in request.fixturenames:
        from tutor import services

        monkeypatch.setattr(services, "_send_draft_task", lambda reply_id, attempt, model_key: None)


@pytest.fixture(scope="package")
def web_server(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        server, port = start_server("browser-server", DJANGO_ALLOW_ASYNC_UNSAFE="")
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(scope="package")
def browser(django_db_setup):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop running in this thread, which Django
    # takes for async code; the tests' ORM calls are plain sync code all the same.
    unsafe = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield chromium
        chromium.close()
    if unsafe is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = unsafe


@pytest.fixture
def session(browser, web_server, request):
    """Opens browser sessions (one per person) that check every page as they go."""
    opened: list[Session] = []

    def open_session(name: str, **options) -> Session:
        s = Session(browser, web_server, name=f"{request.node.name}-{name}", **options)
        opened.append(s)
        return s

    yield open_session
    for s in opened:
        s.close()
    for s in opened:
        s.assert_clean()
