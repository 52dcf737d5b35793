"""Which drafting workers are alive, for which model, and whether they are ready.

Each Celery process started by `manage.py worker` publishes a heartbeat: one Redis key,

    <TUTOR_REDIS_PREFIX>:worker:<model key>:<worker id>

rewritten every TUTOR_WORKER_BEAT_SECONDS with a time-to-live of three beats, so a key
that exists is a worker that was alive a moment ago. Its value is JSON, with no student
data:

    model       the model key it drafts for (a key of TUTOR_MODELS: "local" when none is declared)
    role        "drafting", or "housekeeping" (the reconciler and retention; no model)
    state       "loading"  converting or reading the model (phase, progress, eta_s say how far)
                "starting" loaded, connecting to its queue
                "ready"    taking drafts: its queue loop turned a moment ago
                "stalled"  its queue loop has not turned for a while (Redis away, or hung:
                           the supervisor restarts a hung one)
                "unavailable"  its model cannot be loaded (inference/worker.py): it stays up
                           and takes its drafts, which wait with the reason on the card
    phase       while loading: "converting" (first start only), "reading", "calibrating"
    progress    0..1 while loading, when known
    eta_s       seconds of loading left, estimated from earlier loads of the same model
    active, capacity   drafts in hand, and how many it batches at once
    queue, queue_depth the Celery queue it takes drafts from, and the tasks waiting in it
    started_at, ready_at, beat_at   Unix times;  load_s   how long loading took

Readers: /readyz (tutor/health.py), the metrics (tutor/metrics.py), and the waiting
messages of the student's chat and the teacher's queue (`model_status`).

The model key is a key of settings.TUTOR_MODELS (tutor/model_settings.py): each model has
its own queue and its workers (`manage.py worker --model KEY`).

The supervisor's view is separate and does not need Redis: the heartbeat also touches
the file named by TUTOR_WORKER_ALIVE_FILE, but only while loading or while the queue loop
turns (see QueueLoopHeartbeat).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from redis import Redis

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable

from celery import bootsteps
from django.conf import settings

log = logging.getLogger(__name__)

DEFAULT_MODEL = "local"  # the one model of a deployment that declares none (tutor/model_settings.py)
ALIVE_FILE_ENV = "TUTOR_WORKER_ALIVE_FILE"
READY_MESSAGE = "ready to take drafts"  # logged once per start; tests and benchmarks wait for it
UNAVAILABLE_MESSAGE = "takes drafts but cannot write them"  # logged instead when the model cannot be loaded

LOADING, STARTING, READY, STALLED = "loading", "starting", "ready", "stalled"
UNAVAILABLE = "unavailable"
NONE = "none"  # model_status: no worker at all


def configured_models() -> list[str]:
    """The model keys this platform drafts with (settings.TUTOR_MODELS), the default first."""
    from tutor import model_settings

    return [m["key"] for m in model_settings.declared_models()]


def default_model() -> str:
    from tutor import model_settings

    return model_settings.default_model_key()


def model_queue(model: str) -> str:
    """The Celery queue that holds the drafts of `model`."""
    from tutor import model_settings

    return model_settings.draft_queue(model)


def _key_prefix() -> str:
    return f"{settings.TUTOR_REDIS_PREFIX}:worker:"


_client = None
_client_lock = threading.Lock()


def redis_client() -> Redis:
    """A Redis client with short timeouts: a probe must answer even when Redis does not."""
    global _client
    with _client_lock:
        if _client is None:
            import redis

            _client = redis.Redis.from_url(
                settings.REDIS_URL, socket_timeout=1.5, socket_connect_timeout=1.5, health_check_interval=10
            )
        return _client


def queue_depth(queue: str, client: Redis | None = None) -> int:
    """Tasks waiting in a Celery queue (kombu's Redis transport keeps one list per priority)."""
    client = client or redis_client()
    pipe = client.pipeline(transaction=False)
    pipe.llen(queue)
    for priority in (3, 6, 9):
        pipe.llen(f"{queue}\x06\x16{priority}")
    return sum(int(n or 0) for n in pipe.execute())


class Heartbeat:
    """This process's heartbeat. One per worker process (see `start_heartbeat`)."""

    def __init__(self, *, model: str, role: str, queue: str, capacity: int = 1):
        self.model, self.role, self.queue, self.capacity = model, role, queue, capacity
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}"
        self.key = f"{_key_prefix()}{model}:{self.worker_id}"
        self.state = STARTING
        self.phase = ""
        self.progress: float | None = None
        self.eta_s: int | None = None
        self.load_s: float | None = None
        self.started_at = time.time()
        self.ready_at: float | None = None
        self.last_tick: float | None = None  # monotonic: the queue loop's last turn
        self.active: Callable[[], int] = lambda: 0
        self.alive_file = os.environ.get(ALIVE_FILE_ENV) or None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._announced = False

    # Called by the worker.
    def loading(self, *, phase: str, progress: float | None = None, eta_s: float | None = None) -> None:
        self.state, self.phase = LOADING, phase
        self.progress = None if progress is None else max(0.0, min(1.0, progress))
        self.eta_s = None if eta_s is None else max(1, round(eta_s))
        self._touch()

    def loaded(self, seconds: float) -> None:
        self.state, self.phase, self.progress, self.eta_s, self.load_s = STARTING, "", None, None, round(seconds, 1)
        self._touch()
        self.publish()

    def unavailable(self) -> None:
        """The model cannot be loaded: the worker stays up, but never counts as ready."""
        self.state, self.phase, self.progress, self.eta_s = UNAVAILABLE, "", None, None
        self._touch()
        self.publish()

    def tick(self) -> None:
        """The queue loop turned (called from Celery's event loop, see QueueLoopHeartbeat)."""
        self.last_tick = time.monotonic()
        if self.state not in (READY, UNAVAILABLE):
            self.state = READY
            self.ready_at = time.time()
        self._touch()
        if not self._announced:
            self._announced = True
            if self.state == UNAVAILABLE:
                log.critical("drafting worker %s (model %s) %s", self.worker_id, self.model, UNAVAILABLE_MESSAGE)
            elif self.role == "drafting":
                log.warning("drafting worker %s (model %s) %s", self.worker_id, self.model, READY_MESSAGE)
            else:
                log.warning("%s worker %s ready", self.role, self.worker_id)
            self.publish()

    # The view from outside.
    def snapshot(self) -> dict:
        state = self.state
        beat = settings.TUTOR_WORKER_BEAT_SECONDS
        if state == READY and (self.last_tick is None or time.monotonic() - self.last_tick > 3 * beat):
            state = STALLED
        return {
            "model": self.model,
            "role": self.role,
            "worker": self.worker_id,
            "state": state,
            "phase": self.phase,
            "progress": self.progress,
            "eta_s": self.eta_s,
            "active": self._active(),
            "capacity": self.capacity,
            "queue": self.queue,
            "started_at": round(self.started_at, 3),
            "ready_at": round(self.ready_at, 3) if self.ready_at else None,
            "beat_at": round(time.time(), 3),
            "load_s": self.load_s,
        }

    def publish(self) -> None:
        value = self.snapshot()
        try:
            client = redis_client()
            if self.role == "drafting":
                value["queue_depth"] = queue_depth(self.queue, client)
            ttl = max(3, round(3 * settings.TUTOR_WORKER_BEAT_SECONDS))
            client.set(self.key, json.dumps(value), ex=ttl)
        except Exception as exc:  # Redis restarting: the next beat tries again
            log.debug("heartbeat not published: %s", exc)

    def start(self) -> Heartbeat:
        self._touch()
        self._thread = threading.Thread(target=self._run, name="worker-heartbeat", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        try:
            redis_client().delete(self.key)
        except Exception:  # gone with Redis: its TTL ends it anyway
            pass

    def _run(self) -> None:
        while not self._stop.wait(settings.TUTOR_WORKER_BEAT_SECONDS):
            if self.state in (LOADING, STARTING):
                self._touch()  # loading or connecting: alive, not yet looping
            self.publish()

    def _active(self) -> int:
        try:
            return int(self.active())
        except Exception:
            return 0

    def _touch(self) -> None:
        if self.alive_file:
            try:
                os.utime(self.alive_file)
            except FileNotFoundError:
                open(self.alive_file, "a").close()
            except OSError:
                pass


_current: Heartbeat | None = None


def start_heartbeat(*, model: str, role: str, queue: str, capacity: int = 1) -> Heartbeat:
    """Start this process's heartbeat (call once, before Celery starts)."""
    global _current
    _current = Heartbeat(model=model, role=role, queue=queue, capacity=capacity).start()
    return _current


def current() -> Heartbeat | None:
    """This process's heartbeat; None outside a worker."""
    return _current


class QueueLoopHeartbeat(bootsteps.StartStopStep):
    """A Celery consumer step: beats from inside the consumer's event loop, so the beat
    stops when the loop stops (a hung worker), not only when the process dies."""

    requires = {"celery.worker.consumer.tasks:Tasks"}

    def __init__(self, parent: object, **kwargs: object):
        super().__init__(parent, **kwargs)
        self.timer_ref = None

    def start(self, parent: object) -> None:
        heartbeat = current()
        if heartbeat is None:
            return
        heartbeat.tick()
        self.timer_ref = parent.timer.call_repeatedly(settings.TUTOR_WORKER_BEAT_SECONDS, heartbeat.tick, priority=10)

    def stop(self, parent: object) -> None:
        if self.timer_ref is not None:
            self.timer_ref.cancel()
            self.timer_ref = None

    shutdown = stop


# Readers.


def worker_states(model: str | None = None, role: str | None = "drafting") -> list[dict]:
    """Every live worker's heartbeat (of `model`, if given). Raises if Redis does not answer."""
    client = redis_client()
    pattern = f"{_key_prefix()}{model if model is not None else '*'}:*"
    keys = list(client.scan_iter(match=pattern, count=200))
    states = []
    for raw in client.mget(keys) if keys else []:
        if not raw:
            continue
        try:
            state = json.loads(raw)
        except ValueError:
            continue
        if role is None or state.get("role") == role:
            states.append(state)
    return states


def summarise(model: str, states: list[dict]) -> dict:
    """One model's drafting capacity now: "ready" with at least one ready worker; else
    "loading" (with the shortest estimate), "unavailable" (its workers cannot load it),
    "stalled", or "none"."""
    mine = [s for s in states if s.get("model") == model]
    ready = [s for s in mine if s.get("state") == READY]
    loading = [s for s in mine if s.get("state") in (LOADING, STARTING)]
    if ready:
        state = READY
    elif loading:
        state = LOADING
    elif any(s.get("state") == UNAVAILABLE for s in mine):
        state = UNAVAILABLE
    elif mine:
        state = STALLED
    else:
        state = NONE
    etas = [s["eta_s"] for s in loading if isinstance(s.get("eta_s"), int | float)]
    progress = [s["progress"] for s in loading if isinstance(s.get("progress"), int | float)]
    return {
        "model": model,
        "state": state,
        "ready_workers": len(ready),
        "loading_workers": len(loading),
        "eta_s": (max(1, round(min(etas))) if etas else None) if state == LOADING else None,
        "progress": (round(max(progress), 2) if progress else None) if state == LOADING else None,
        "capacity": sum(int(s.get("capacity") or 0) for s in ready),
        "active": sum(int(s.get("active") or 0) for s in ready),
    }


_memo: dict[str, tuple[float, dict]] = {}
_memo_lock = threading.Lock()
MEMO_SECONDS = 2.0


def model_status(model: str) -> dict:
    """Whether `model` can draft now, as the waiting messages show it; read at most every
    two seconds per process (many sockets ask at once). "unknown" when Redis is away."""
    now = time.monotonic()
    with _memo_lock:
        hit = _memo.get(model)
        if hit and now - hit[0] < MEMO_SECONDS:
            return hit[1]
    try:
        status = summarise(model, worker_states(model))
    except Exception:
        status = {"model": model, "state": "unknown", "eta_s": None, "progress": None}
    with _memo_lock:
        _memo[model] = (now, status)
    return status


def forget_memo() -> None:
    """Read Redis afresh next time (tests)."""
    with _memo_lock:
        _memo.clear()
