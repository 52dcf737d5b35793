"""Probes for the process manager, the proxy and monitoring.

    /healthz   200 while this process answers (liveness: it touches nothing else)
    /readyz    JSON: the database, Redis, and for each configured model a fresh heartbeat
               of at least one ready worker, its queue depth, and the drafts owed with
               the oldest one's wait. 503 when the platform cannot draft.
    /metrics   Prometheus figures (tutor/metrics.py): 404 until METRICS_TOKEN is set, then
               401 without "Authorization: Bearer <METRICS_TOKEN>".

All three are answered by ProbeMiddleware, first in the chain: before host validation and
the HTTPS redirect, so that systemd, a load balancer or Prometheus on the machine can reach
a server directly. None needs a session, and none says anything about a person: counts,
states and timings only.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _timed(check: Callable[[], object]) -> dict:
    started = time.perf_counter()
    try:
        detail = check() or {}
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__, "ms": round((time.perf_counter() - started) * 1000, 1)}
    return {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 1), **detail}


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def readiness() -> tuple[bool, dict]:
    """Whether the platform can draft now, and why (see the module docstring)."""
    from tutor import selectors, workers

    checks = {"database": _timed(_database)}
    states: list[dict] = []

    def redis_check() -> dict:
        workers.redis_client().ping()
        states.extend(workers.worker_states(role=None))
        return {}

    checks["redis"] = _timed(redis_check)
    models = {}
    for model in workers.configured_models():
        summary = workers.summarise(model, [s for s in states if s.get("role") == "drafting"])
        summary["ok"] = summary["state"] == workers.READY
        if checks["redis"]["ok"]:
            try:
                summary["queue_depth"] = workers.queue_depth(workers.model_queue(model))
            except Exception:
                summary["queue_depth"] = None
        models[model] = summary
    housekeeping = [s for s in states if s.get("role") == "housekeeping" and s.get("state") == workers.READY]
    body = {"checks": checks, "models": models, "housekeeping": {"ready_workers": len(housekeeping)}}
    if checks["database"]["ok"]:
        try:
            owed = selectors.owed_drafts()
            body["drafts"] = {"owed": owed["owed"], "oldest_owed_s": owed["oldest_owed_s"]}
        except Exception as exc:
            body["drafts"] = {"error": type(exc).__name__}
    ready = checks["database"]["ok"] and checks["redis"]["ok"] and all(m["ok"] for m in models.values())
    body["status"] = "ready" if ready else "unavailable"
    return ready, body


def readyz(request: HttpRequest) -> JsonResponse:
    ready, body = readiness()
    response = JsonResponse(body, status=200 if ready else 503)
    response["Cache-Control"] = "no-store"
    return response


def metrics(request: HttpRequest) -> HttpResponse:
    token = settings.METRICS_TOKEN
    if not token:
        return HttpResponse("Metrics are off: set METRICS_TOKEN.\n", status=404, content_type="text/plain")
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        response = HttpResponse("Send Authorization: Bearer <METRICS_TOKEN>.\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    from prometheus_client import CONTENT_TYPE_LATEST

    from tutor.metrics import render

    return HttpResponse(render(), content_type=CONTENT_TYPE_LATEST)


PROBES = {"/healthz": healthz, "/readyz": readyz, "/metrics": metrics}


class ProbeMiddleware:
    """Answers the probes before the rest of the chain (see the module docstring)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        probe = PROBES.get(request.path_info)
        if probe is not None and request.method in ("GET", "HEAD"):
            return probe(request)
        return self.get_response(request)
