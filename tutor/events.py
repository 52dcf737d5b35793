"""Group names and message shapes for live updates, and the one way to send them.

A socket message is only a nudge: the database is the truth. What a student's socket
is sent carries only text that has passed the approval gate: the sender reads the change
through tutor.selectors.student_view once, and each socket passes it on when it follows
what the socket already has, or re-reads from the database when it does not (a gap, or
a bare nudge). Wait estimates carry numbers only. Drafts and their progress travel only
to reviewer groups, which no student socket joins.
"""

from __future__ import annotations

import asyncio
import logging
import threading

from channels.layers import get_channel_layer

log = logging.getLogger(__name__)


def conversation_group(conversation_id: int) -> str:
    return f"conversation.{conversation_id}"


def reviewers_group(classroom_id: int) -> str:
    return f"reviewers.{classroom_id}"


def person_group(user_id: int) -> str:
    return f"person.{user_id}"


def class_chats_group(classroom_id: int) -> str:
    """The class's students' open chats: told only whether they may ask (no text)."""
    return f"chats.{classroom_id}"


def alerts_group(user_id: int) -> str:
    """One person's urgent-alert banners (tutor.consumers.AlertConsumer), on every page."""
    return f"alerts.{user_id}"


class _Sender:
    """One event loop thread per process sends every event in order over one connection.

    async_to_sync opens a loop and a Redis connection per call (~6.5 ms); a worker that
    streams tokens would top out near 150 messages/s that way (PITFALLS).
    """

    def __init__(self):
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue | None = None
        self._lock = threading.Lock()
        self._pid = None

    def _start(self):
        import os

        ready = threading.Event()

        def run():
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            self._queue = asyncio.Queue()
            ready.set()
            self._loop.run_until_complete(self._drain())

        threading.Thread(target=run, name="tutor-events", daemon=True).start()
        ready.wait()
        self._pid = os.getpid()

    async def _drain(self):
        layer = get_channel_layer()
        while True:
            group, message, done = await self._queue.get()
            for attempt in range(3):
                try:
                    await layer.group_send(group, message)
                    break
                except Exception as exc:  # Redis down: clients re-sync from the database later
                    log.warning("event to %s not sent (try %d): %s", group, attempt + 1, exc)
                    await asyncio.sleep(0.2 * (attempt + 1))
            if done is not None:
                done.set()

    def send(self, group: str, message: dict, wait: bool = False) -> None:
        import os

        with self._lock:
            if self._loop is None or self._pid != os.getpid():
                self._start()
        done = threading.Event() if wait else None
        self._loop.call_soon_threadsafe(self._queue.put_nowait, (group, message, done))
        if done is not None:
            done.wait(5)


_sender = _Sender()


def send(group: str, message: dict, wait: bool = False) -> None:
    """Send from synchronous code (views, services, tasks). Ordered per process."""
    _sender.send(group, message, wait=wait)


# Message shapes. "type" names the consumer method that handles it.


def conversation_changed(
    conversation_id: int, *, since: int | None = None, version: int | None = None, messages: list[dict] | None = None
) -> None:
    """What changed in a conversation after version `since`, as its student may see it.

    `messages` must come from tutor.selectors.student_view (the approval gate); without
    them the event is a bare nudge and the socket re-reads from the database.
    """
    send(
        conversation_group(conversation_id),
        {"type": "conversation.changed", "since": since, "version": version, "messages": messages},
    )


def waits_changed(estimates: dict[int, list[dict]]) -> None:
    """The queue moved: each conversation's new wait estimate (numbers only, no text)."""
    for conversation_id, wait in estimates.items():
        send(conversation_group(conversation_id), {"type": "wait.changed", "wait": wait})


def review_item_changed(classroom_id: int, reply_id: int, *, decided: bool = False) -> None:
    """A reply of the class changed; `decided`: a teacher decided it, so its card only has
    to go (the sockets pass that on without reading it)."""
    send(
        reviewers_group(classroom_id),
        {"type": "review.changed", "classroom_id": classroom_id, "reply_id": reply_id, "decided": decided},
    )


def draft_progress(classroom_id: int, reply_id: int, attempt: int, text: str) -> None:
    send(
        reviewers_group(classroom_id),
        {"type": "review.progress", "reply_id": reply_id, "attempt": attempt, "text": text},
    )


def person_access_changed(user_id: int, ended_session: str = "") -> None:
    """Their open sockets re-check access at once (removed from a class, deactivated);
    the sockets of an ended session (signed out) close."""
    send(person_group(user_id), {"type": "access.changed", "ended_session": ended_session})


def class_availability_changed(classroom_id: int) -> None:
    """The class was paused, opened again or given other hours: its open chats re-read
    whether a student may ask now."""
    send(class_chats_group(classroom_id), {"type": "availability.changed"})


def alert_changed(user_ids: list[int], alert_id: int) -> None:
    """An urgent alert was raised, moved on, acknowledged or marked: the banners of these
    people re-read it through tutor.safeguarding.selectors. Carries no words."""
    for user_id in sorted(set(user_ids)):
        send(alerts_group(user_id), {"type": "alert.changed", "alert_id": alert_id})
