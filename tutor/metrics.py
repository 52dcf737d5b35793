"""Figures in Prometheus format, summed over every process of the machine.

Each process (the uvicorn servers, the Celery workers) writes its counters and histograms
to memory-mapped files in PROMETHEUS_MULTIPROC_DIR (settings.METRICS_DIR, set by settings
before this module is imported); /metrics (tutor/health.py) adds them up, and adds what
it reads at that moment from the database (drafts by state) and Redis (workers, queues).

The families, with what they count:

    tutor_drafts{state}                      replies owed or in review now, by state (from the database)
    tutor_oldest_owed_draft_seconds          how long the oldest queued or drafting reply has waited
    tutor_draft_events_total{event}          queued, started, drafted, failed
    tutor_reconciler_requeued_total{reason}  drafts the reconciler queued again: lost, silent, orphaned
    tutor_ask_to_draft_seconds               a question to its finished draft
    tutor_ask_to_approved_seconds{decision}  a question to the teacher's decision (as_drafted and
                                             edited are approvals; teacher_reply, rejected the others)
    tutor_review_seconds{decision}           a draft opened to decided, by the reviewer who decided it
    tutor_generation_tokens_per_second{model,worker}    each draft's decoding speed
    tutor_generation_first_token_seconds{model,worker}  each draft's time to its first token
    tutor_open_sockets{kind}                 chat and review sockets open now
    tutor_safeguarding_alerts_total{kind}    safeguarding alerts raised (`safeguarding_alert`)
    tutor_workers{model,role,state}          live worker heartbeats (tutor/workers.py)
    tutor_queue_depth{queue}                 tasks waiting in each Celery queue

No label ever carries a name, an id or a text: only states, decisions, model keys and
host names.
"""

from __future__ import annotations

import glob
import logging
import os
import re
import socket

from django.conf import settings
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily

log = logging.getLogger(__name__)

WAIT_BUCKETS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200)
REVIEW_BUCKETS = (1, 2, 5, 10, 15, 20, 30, 45, 60, 120, 300, 600)
SPEED_BUCKETS = (1, 2, 5, 10, 20, 30, 50, 100, 200, 500, 1000)
FIRST_TOKEN_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60)

DRAFT_EVENTS = Counter("tutor_draft_events", "Drafts queued, started, drafted and failed.", ["event"])
REQUEUED = Counter("tutor_reconciler_requeued", "Drafts the reconciler queued again.", ["reason"])
ASK_TO_DRAFT = Histogram(
    "tutor_ask_to_draft_seconds", "From a student's question to its finished draft.", buckets=WAIT_BUCKETS
)
ASK_TO_APPROVED = Histogram(
    "tutor_ask_to_approved_seconds",
    "From a student's question to the teacher's decision on its reply.",
    ["decision"],
    buckets=WAIT_BUCKETS,
)
REVIEW = Histogram("tutor_review_seconds", "From opening a draft to deciding it.", ["decision"], buckets=REVIEW_BUCKETS)
TOKENS_PER_SECOND = Histogram(
    "tutor_generation_tokens_per_second", "Each draft's decoding speed.", ["model", "worker"], buckets=SPEED_BUCKETS
)
FIRST_TOKEN = Histogram(
    "tutor_generation_first_token_seconds",
    "Each draft's time to its first token.",
    ["model", "worker"],
    buckets=FIRST_TOKEN_BUCKETS,
)
OPEN_SOCKETS = Gauge("tutor_open_sockets", "WebSockets open now.", ["kind"], multiprocess_mode="livesum")
SAFEGUARDING_ALERTS = Counter("tutor_safeguarding_alerts", "Safeguarding alerts raised.", ["kind"])

_HOST = socket.gethostname()

# Known label values start at zero, so that a dashboard sees them before the first event.
for _event in ("queued", "started", "drafted", "failed"):
    DRAFT_EVENTS.labels(_event)
for _reason in ("lost", "silent", "orphaned"):
    REQUEUED.labels(_reason)
for _kind in ("chat", "review"):
    OPEN_SOCKETS.labels(_kind)


# What the code calls (one line at each place that counts something).


def draft_event(event: str) -> None:
    DRAFT_EVENTS.labels(event).inc()


def draft_requeued(reason: str, count: int = 1) -> None:
    if count:
        REQUEUED.labels(reason).inc(count)


def draft_finished(*, waited_s: float) -> None:
    DRAFT_EVENTS.labels("drafted").inc()
    ASK_TO_DRAFT.observe(max(0.0, waited_s))


def reply_decided(*, decision: str, waited_s: float, review_s: float | None) -> None:
    ASK_TO_APPROVED.labels(decision).observe(max(0.0, waited_s))
    if review_s is not None:
        REVIEW.labels(decision).observe(max(0.0, review_s))


def draft_generated(*, model: str, new_tokens: int, seconds: float, first_token_s: float | None) -> None:
    """A draft the engine finished (inference.engine.MeasuredEngine)."""
    if seconds > 0 and new_tokens > 0:
        TOKENS_PER_SECOND.labels(model, _HOST).observe(new_tokens / seconds)
    if first_token_s is not None:
        FIRST_TOKEN.labels(model, _HOST).observe(first_token_s)


def socket_opened(kind: str) -> None:
    OPEN_SOCKETS.labels(kind).inc()


def socket_closed(kind: str) -> None:
    OPEN_SOCKETS.labels(kind).dec()


def safeguarding_alert(kind: str) -> None:
    """A safeguarding alert was raised (for the safeguarding feature: `kind` is a category
    such as "distress", never words of the message)."""
    SAFEGUARDING_ALERTS.labels(kind).inc()


# Reading them.


class _LiveCollector:
    """Figures read when scraped: drafts by state (database), workers and queues (Redis)."""

    def collect(self):
        from tutor import selectors, workers

        drafts = GaugeMetricFamily("tutor_drafts", "Replies owed or in review now, by state.", labels=["state"])
        oldest = GaugeMetricFamily(
            "tutor_oldest_owed_draft_seconds", "How long the oldest queued or drafting reply has waited."
        )
        try:
            summary = selectors.owed_drafts()
            for state, count in summary["by_state"].items():
                drafts.add_metric([state], count)
            oldest.add_metric([], summary["oldest_owed_s"] or 0)
        except Exception as exc:
            log.warning("metrics: the database did not answer: %s", exc)
        yield drafts
        yield oldest

        live = GaugeMetricFamily("tutor_workers", "Live worker heartbeats.", labels=["model", "role", "state"])
        depth = GaugeMetricFamily("tutor_queue_depth", "Tasks waiting in each Celery queue.", labels=["queue"])
        try:
            counts: dict[tuple, int] = {}
            for state in workers.worker_states(role=None):
                key = (str(state.get("model")), str(state.get("role")), str(state.get("state")))
                counts[key] = counts.get(key, 0) + 1
            for key, count in sorted(counts.items()):
                live.add_metric(list(key), count)
            queues = {workers.model_queue(m) for m in workers.configured_models()}
            queues.add(settings.CELERY_HOUSEKEEPING_QUEUE)
            for queue in sorted(queues):
                depth.add_metric([queue], workers.queue_depth(queue))
        except Exception as exc:
            log.warning("metrics: Redis did not answer: %s", exc)
        yield live
        yield depth


_PID_FILE = re.compile(r"_(\d+)\.db$")


def _forget_dead_processes(folder: str) -> None:
    """Drop the gauges of processes that have exited (all of them ran on this machine),
    so that a killed server's open sockets are not counted for ever."""
    for path in glob.glob(os.path.join(folder, "gauge_live*.db")):
        match = _PID_FILE.search(path)
        if not match:
            continue
        pid = int(match.group(1))
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, folder)
        except PermissionError:
            pass  # alive, another user's


def render() -> bytes:
    """Every family above, in Prometheus' text format."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR", settings.METRICS_DIR)
    _forget_dead_processes(folder)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=folder)
    registry.register(_LiveCollector())
    return generate_latest(registry)
