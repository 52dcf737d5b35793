"""Request ids in every log line, carried from the web request into the Celery task, and
optional error reports to Sentry with message bodies scrubbed.

A request id comes from nginx (`X-Request-ID`, see deploy/nginx/tutor.conf) or is made
here; every socket frame gets its own. It is set in a context variable, which
`RequestIdFilter` copies onto each log record, `before_task_publish` puts in the headers
of each task sent while it is set, and `task_prerun` sets again in the worker. So one id
follows a student's question from the socket frame to the draft's task.

What must never be logged at INFO or above: a student's or a draft's text
(tests/test_logs.py drives the core loop and greps the logs for them). Log ids.

Settings import this module (for init_sentry): it imports nothing from Django at the top.
"""

from __future__ import annotations

import contextvars
import logging
import re
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

REQUEST_ID_HEADER = "HTTP_X_REQUEST_ID"
_VALID_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("tutor_request_id", default="-")
TASK_HEADER = "tutor_request_id"


def new_request_id() -> str:
    return uuid.uuid4().hex


def current_request_id() -> str:
    return _request_id.get()


def set_request_id(value: str | None) -> contextvars.Token:
    """Make `value` (or a new id, when it is missing or malformed) the current id."""
    if not value or not _VALID_ID.match(value):
        value = new_request_id()
    return _request_id.set(value)


def reset_request_id(token: contextvars.Token) -> None:
    _request_id.reset(token)


class RequestIdFilter(logging.Filter):
    """Adds `request_id` to every record (a dash outside any request or task)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = _request_id.get()
        return True


def json_formatter(**options) -> logging.Formatter:
    """python-json-logger's formatter, without uvicorn's terminal-coloured copy of each message."""
    from pythonjsonlogger.core import RESERVED_ATTRS
    from pythonjsonlogger.json import JsonFormatter

    return JsonFormatter(reserved_attrs=[*RESERVED_ATTRS, "color_message"], **options)


class QuietServerFilter(logging.Filter):
    """Drops the server's per-socket chatter at INFO: each socket's "[accepted]", "connection
    open" and "connection closed", and the second line of each refusal ("connection
    rejected"), which the server's own '"WebSocket /path" 403' line already says."""

    CHATTER = (
        '%s - "WebSocket %s" [accepted]',
        "connection open",
        "connection closed",
        "connection rejected (%d %s)",
        "HTTP response sent (%d %s)",
    )

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.INFO or record.msg not in self.CHATTER


class RequestIdMiddleware:
    """The request's id: nginx's X-Request-ID, or a new one; sent back in the answer."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = set_request_id(request.META.get(REQUEST_ID_HEADER))
        try:
            response = self.get_response(request)
            response.headers.setdefault("X-Request-ID", _request_id.get())
            return response
        finally:
            reset_request_id(token)


def connect_celery_signals() -> None:
    """Carry the current id in every task's headers, and restore it in the worker."""
    from celery.signals import before_task_publish, task_postrun, task_prerun

    @before_task_publish.connect(weak=False)
    def add_request_id(headers: dict | None = None, **kwargs: object) -> None:
        if headers is not None and _request_id.get() != "-":
            headers.setdefault(TASK_HEADER, _request_id.get())

    @task_prerun.connect(weak=False)
    def restore_request_id(task: object = None, task_id: str | None = None, **kwargs: object) -> None:
        carried = getattr(task.request, TASK_HEADER, None) if task is not None else None
        task.request._tutor_log_token = set_request_id(carried or task_id)

    @task_postrun.connect(weak=False)
    def forget_request_id(task: object = None, **kwargs: object) -> None:
        token = getattr(task.request, "_tutor_log_token", None) if task is not None else None
        if token is not None:
            try:
                reset_request_id(token)
            except ValueError:  # set in another context: leave it
                pass


# Sentry: what may leave the machine in an error report.

_KEPT_HEADERS = {"user-agent", "x-request-id", "x-forwarded-proto", "host", "accept-language", "content-type"}


def scrub_event(event: dict, hint: dict | None = None) -> dict:
    """Remove what could hold a student's or a draft's text, or a secret: request bodies,
    cookies, query strings, most headers, local variables, log message arguments and
    breadcrumb data. The exception type and stack (file, line, function) stay."""
    request = event.get("request")
    if isinstance(request, dict):
        for key in ("data", "cookies", "query_string", "env"):
            request.pop(key, None)
        headers = request.get("headers")
        if isinstance(headers, dict):
            request["headers"] = {k: v for k, v in headers.items() if k.lower() in _KEPT_HEADERS}
    for exception in (event.get("exception") or {}).get("values") or []:
        for frame in (exception.get("stacktrace") or {}).get("frames") or []:
            frame.pop("vars", None)
    logentry = event.get("logentry")
    if isinstance(logentry, dict):
        logentry.pop("params", None)
        if logentry.get("message") is not None:
            logentry.pop("formatted", None)  # the template without its arguments
    event.pop("extra", None)
    breadcrumbs = event.get("breadcrumbs")
    crumbs = breadcrumbs.get("values") if isinstance(breadcrumbs, dict) else breadcrumbs
    for crumb in crumbs or []:
        scrub_breadcrumb(crumb)
    return event


def scrub_breadcrumb(crumb: dict, hint: dict | None = None) -> dict:
    crumb.pop("data", None)
    if crumb.get("category") == "query":
        crumb["message"] = "(SQL)"  # SQL with its parameters inlined may hold a question
    return crumb


def init_sentry(dsn: str, *, environment: str) -> None:
    """Send unhandled errors to Sentry, scrubbed (see scrub_event). Called by settings."""
    import sentry_sdk

    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        send_default_pii=False,
        include_local_variables=False,
        max_request_body_size="never",
        before_send=scrub_event,
        before_breadcrumb=scrub_breadcrumb,
        traces_sample_rate=0.0,
    )
