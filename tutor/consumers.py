"""WebSockets: the student's chat and the teacher's live review queue.

Both refuse before accept() when the person may not be there, join their private
groups only after that check, and check access again on every frame and every event.
Events are nudges; what is sent to a student is re-read through the approval gate.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import datetime
from types import SimpleNamespace
from typing import Any, TypeVar

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.db import DatabaseError, InterfaceError, OperationalError, close_old_connections
from django.http import Http404
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from classrooms.selectors import classroom_availability_changes_at, classrooms_reviewed_by, may_receive_alerts
from tutor import events, logs, metrics, redis_watch, selectors, services
from tutor.safeguarding import selectors as safeguarding_selectors

log = logging.getLogger(__name__)

MAX_FRAME_CHARS = 16_000
# Close codes the pages act on (static/tutor/socket.js): 4401 and 4403 stop reconnecting.
CLOSE_SIGNED_OUT = 4401  # the session ended (signed out, expired, password changed): sign in again
CLOSE_FORBIDDEN = 4403  # no longer allowed here (removed from the class, class archived)
CLOSE_TRY_AGAIN = 1013  # the database is unreachable: the page reconnects with backoff and catches up
DB_RETRY_SECONDS = 1.0
HOURS_RECHECK_SECONDS = 3600.0  # an open chat re-reads when its class's hours change it at least this often
T = TypeVar("T")


@database_sync_to_async
def _in_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    close_old_connections()  # the database may have restarted under a long-lived socket
    return fn(*args, **kwargs)


async def _db(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """fn(*args, **kwargs) in a database thread. A lost connection (a restarting
    PostgreSQL) is tried once more after a moment; a second failure raises."""
    try:
        return await _in_thread(fn, *args, **kwargs)
    except (OperationalError, InterfaceError) as exc:
        log.warning("database unreachable (%s); trying once more", type(exc).__name__)
        await asyncio.sleep(DB_RETRY_SECONDS)
        return await _in_thread(fn, *args, **kwargs)


class JsonSocket(AsyncWebsocketConsumer):
    """Parses frames and answers bad ones with a clear error; the socket stays usable.

    Nothing is read or sent once the person's session has ended: the socket closes
    (CLOSE_SIGNED_OUT) when the session expires, and every frame and event is checked
    against the session's end first. An event the database cannot answer closes the
    socket with CLOSE_TRY_AGAIN, so that the page reconnects and catches up.
    """

    socket_kind = ""  # in the open-sockets metric
    closing = False  # the server closed (or refused) the socket: nothing more goes out
    session_until: datetime | None = None  # when the session stops signing this person in
    _session_timer: asyncio.Task | None = None

    async def dispatch(self, message: dict) -> None:
        kind = message.get("type", "")
        if kind != "websocket.disconnect":
            if self.closing:
                return
            if self.session_until is not None and timezone.now() >= self.session_until:
                try:
                    alive = await self.session_alive()  # it may have been extended since
                except DatabaseError:
                    return await self.close(code=CLOSE_TRY_AGAIN)
                if not alive:
                    return await self.close(code=CLOSE_SIGNED_OUT)
        # Everything sent (errors, flags, labels) in the person's language, as on their pages;
        # each frame or event under a request id of its own, which its tasks carry on.
        token = logs.set_request_id(None)
        try:
            with translation.override(self.language()):
                try:
                    await super().dispatch(message)
                except DatabaseError:
                    log.warning("database unavailable for a %s event; the socket closes to reconnect", kind)
                    await self.close(code=CLOSE_TRY_AGAIN)
        finally:
            logs.reset_request_id(token)

    async def accept(self, subprotocol: str | None = None, headers: list | None = None) -> None:
        await super().accept(subprotocol, headers)
        if not getattr(self, "_counted", False):
            self._counted = True
            metrics.socket_opened(self.socket_kind)

    def language(self) -> str:
        """The account's language; else the language cookie or Accept-Language (as LocaleMiddleware)."""
        user = self.scope.get("user")
        if getattr(user, "language", ""):
            return user.language
        headers = dict(self.scope.get("headers") or [])
        request = SimpleNamespace(
            COOKIES=self.scope.get("cookies") or {},
            META={"HTTP_ACCEPT_LANGUAGE": headers.get(b"accept-language", b"").decode("latin-1")},
        )
        return translation.get_language_from_request(request)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is None:
            return await self.send_error("invalid_frame", _("Send JSON text frames."))
        if len(text_data) > MAX_FRAME_CHARS:
            return await self.send_error(
                "too_large", _("Frames are limited to %(n)d characters.") % {"n": MAX_FRAME_CHARS}
            )
        try:
            frame = json.loads(text_data)
        except (ValueError, RecursionError):  # RecursionError: thousands of nested arrays
            return await self.send_error("invalid_frame", _("That frame is not valid JSON."))
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            return await self.send_error("invalid_frame", _("A frame is an object with a 'type'."))
        handler = getattr(self, "frame_" + frame["type"], None) if frame["type"].isidentifier() else None
        if handler is None:
            return await self.send_error(
                "unknown_type", _("Unknown frame type %(type)s.") % {"type": repr(frame["type"][:40])}
            )
        try:
            if await self.recheck():
                await handler(frame)
        except DatabaseError:
            # The database is restarting: nothing was saved; the page sends it again.
            log.warning("database unavailable for a %s frame", frame["type"])
            await self.send_error(
                "unavailable", _("The server is busy for a moment; trying again."), client_id=frame.get("client_id", "")
            )

    async def send_json(self, payload: dict) -> None:
        await self.send(text_data=json.dumps(payload))

    async def send_error(self, code: str, message: str, **extra) -> None:
        await self.send_json({"type": "error", "code": code, "message": message, **extra})

    async def close(self, code: int | bool | None = None, reason: str | None = None) -> None:
        if self.closing:
            return
        self.closing = True
        if self._session_timer is not None:
            self._session_timer.cancel()
        await super().close(code=code, reason=reason)

    async def websocket_disconnect(self, message: dict) -> None:
        self.closing = True
        if self._session_timer is not None:
            self._session_timer.cancel()
        if getattr(self, "_counted", False):
            self._counted = False
            metrics.socket_closed(self.socket_kind)
        await super().websocket_disconnect(message)

    async def access_changed(self, event: dict) -> None:
        ended = event.get("ended_session")
        if ended and ended == getattr(self.scope.get("session"), "session_key", None):
            return await self.close(code=CLOSE_SIGNED_OUT)
        await self.recheck()

    async def redis_restarted(self) -> None:
        """Called by tutor.redis_watch after a Redis restart emptied the groups: re-join
        them and catch up, with the same checks as any event."""
        await self.dispatch({"type": "rejoin.groups"})

    async def may_connect(self) -> bool:
        """A signed-in person, with a live session, allowed here (checked before accept)."""
        user = self.scope.get("user")
        return bool(user and user.is_authenticated) and await self.session_alive() and await self.still_allowed()

    async def recheck(self) -> bool:
        """Still signed in with this session, and still allowed here? If not, the socket
        closes (CLOSE_SIGNED_OUT, CLOSE_FORBIDDEN) and this returns False."""
        if not await self.session_alive():
            await self.close(code=CLOSE_SIGNED_OUT)
            return False
        if not await self.still_allowed():
            await self.close(code=CLOSE_FORBIDDEN)
            return False
        return True

    async def session_alive(self) -> bool:
        """False once the session no longer signs this person in: signed out, expired
        (even before clearsessions purges it), password changed, account deactivated.
        Sockets outlive their session unless closed on purpose (django/channels#1324)."""
        key = getattr(self.scope.get("session"), "session_key", None)
        self.session_until = await _db(selectors.session_signed_in_until, key, self.user)
        if self.session_until is None:
            return False
        if self._session_timer is None or self._session_timer.done():
            self._session_timer = asyncio.get_running_loop().create_task(self._close_when_session_ends())
        return True

    async def _close_when_session_ends(self) -> None:
        """Close the socket at the session's end, even if no frame or event comes."""
        while not self.closing and self.session_until is not None:
            await asyncio.sleep(max(0.0, (self.session_until - timezone.now()).total_seconds()) + 0.05)
            if self.closing:
                return
            try:
                alive = await self.session_alive()  # used since, it may last longer now
            except DatabaseError:
                return await self.close(code=CLOSE_TRY_AGAIN)
            if not alive:
                return await self.close(code=CLOSE_SIGNED_OUT)

    async def still_allowed(self) -> bool:
        raise NotImplementedError


class ChatConsumer(JsonSocket):
    """ws/chat/<conversation_id>/: a student's own conversation."""

    socket_kind = "chat"
    _hours_timer: asyncio.Task | None = None

    async def connect(self) -> None:
        self.user = self.scope.get("user")
        self.conversation_id = int(self.scope["url_route"]["kwargs"]["conversation_id"])
        self.sent_version = 0
        if not await self.may_connect():
            return await self.close(code=CLOSE_FORBIDDEN)
        # Join before accepting, so nothing sent after the socket opens is missed.
        await self.join_groups()
        await self.accept()
        redis_watch.watch(self)
        self._follow_the_hours()

    def _follow_the_hours(self) -> None:
        """(Re)start the timer that tells the page when the class's opening hours open or
        close it, as a teacher's pause is told (availability_changed)."""
        if self._hours_timer is not None:
            self._hours_timer.cancel()
        self._hours_timer = asyncio.get_running_loop().create_task(self._at_the_next_opening_or_closing())

    async def _at_the_next_opening_or_closing(self) -> None:
        try:
            changes_at = await _db(lambda: classroom_availability_changes_at(self.conversation.classroom))
        except DatabaseError:
            return  # the next event or frame closes the socket to reconnect, which starts again
        if changes_at is None or self.closing:
            return
        wait = (changes_at - timezone.now()).total_seconds() + 1.0  # just past the minute it changes
        await asyncio.sleep(min(max(wait, 0.0), HOURS_RECHECK_SECONDS))
        if not self.closing:
            # Through the socket's own queue, so that the event gets every check a group event gets.
            await self.channel_layer.send(self.channel_name, {"type": "availability.changed"})

    async def join_groups(self) -> None:
        await self.channel_layer.group_add(events.conversation_group(self.conversation_id), self.channel_name)
        await self.channel_layer.group_add(events.person_group(self.user.id), self.channel_name)
        await self.channel_layer.group_add(events.class_chats_group(self.classroom_id), self.channel_name)

    async def rejoin_groups(self, event: dict) -> None:
        await self.join_groups()
        await self.send_changes(self.sent_version)  # what was sent while nobody was in the group

    async def disconnect(self, code: int) -> None:
        redis_watch.forget(self)
        if self._hours_timer is not None:
            self._hours_timer.cancel()
        if getattr(self, "user", None) and self.user.is_authenticated:
            await self.channel_layer.group_discard(events.conversation_group(self.conversation_id), self.channel_name)
            await self.channel_layer.group_discard(events.person_group(self.user.id), self.channel_name)
            if getattr(self, "classroom_id", None):
                await self.channel_layer.group_discard(events.class_chats_group(self.classroom_id), self.channel_name)

    async def still_allowed(self) -> bool:
        try:
            self.conversation = await _db(selectors.conversation_for_student, self.user, self.conversation_id)
        except Http404:
            return False
        self.classroom_id = self.conversation.classroom_id
        return True

    async def availability_changed(self, event: dict) -> None:
        """The teacher paused the class, opened it again or changed its hours, or the hours
        opened or closed it: the page says whether the student may ask now ("closed": the
        reason, or "" when open)."""
        if await self.recheck():
            refusal = await _db(lambda: services.availability_refusal(self.conversation.classroom))
            await self.send_json({"type": "availability", "closed": refusal.message if refusal else ""})
            self._follow_the_hours()  # from the class as it is now

    async def frame_sync(self, frame: dict) -> None:
        since = frame.get("since", 0)
        if not isinstance(since, int) or isinstance(since, bool) or since < 0:
            return await self.send_error("invalid_frame", _("'since' must be a version number."))
        # A version from the future (a stale tab, a bad client) would make this socket wait
        # for changes that never come: the conversation's own version is the most it has.
        since = min(since, self.conversation.version)
        self.sent_version = min(self.sent_version, since) if self.sent_version else since
        await self.send_changes(since)

    async def frame_ask(self, frame: dict) -> None:
        text, client_id = frame.get("text"), frame.get("client_id", "")
        if not isinstance(text, str) or not isinstance(client_id, str):
            return await self.send_error("invalid_frame", _("'text' and 'client_id' must be text."))
        try:
            await _db(services.question_ask, conversation=self.conversation, text=text, client_id=client_id)
        except services.TutorError as exc:
            return await self.send_error(exc.code, exc.message, client_id=client_id)
        await self.send_changes(self.sent_version)
        left = await _db(lambda: selectors.student_allowance(self.user, self.conversation.classroom))
        await self.send_json({"type": "allowance", "hour_left": left["hour_left"], "day_left": left["day_left"]})

    async def conversation_changed(self, event: dict) -> None:
        # The sender read the change through the approval gate; it goes on as it is when it
        # follows what this socket has. A gap or a bare nudge: re-read from the database.
        # (Removal from the class, deactivation and sign-out close the socket at once,
        # through access.changed.)
        version = event.get("version")
        if event.get("messages") is not None and event.get("since") == self.sent_version:
            self.sent_version = version
            await self.send_json({"type": "messages", "messages": event["messages"], "version": version})
        elif version is None or version > self.sent_version:
            await self.send_changes(self.sent_version)

    async def send_changes(self, since: int) -> None:
        """Re-check access and read what changed since `since`, in one trip to the database."""

        def read():
            conversation = selectors.conversation_for_student(self.user, self.conversation_id)
            # "wait": seconds until each pending reply is likely answered (numbers only).
            return selectors.messages_for_student(conversation, since), selectors.wait_estimates(conversation)

        try:
            messages, wait = await _db(read)
        except Http404:
            return await self.close(code=CLOSE_FORBIDDEN)
        if messages:
            self.sent_version = max(self.sent_version, max(m["version"] for m in messages))
        await self.send_json({"type": "messages", "messages": messages, "version": self.sent_version, "wait": wait})

    async def frame_wait(self, frame: dict) -> None:
        await self.send_wait()

    async def wait_changed(self, event: dict) -> None:
        if "wait" in event:  # numbers the sender worked out for this conversation
            return await self.send_json({"type": "wait", "wait": event["wait"]})
        await self.send_wait()

    async def send_wait(self) -> None:
        wait = await _db(selectors.wait_estimates, self.conversation)
        await self.send_json({"type": "wait", "wait": wait})


class ReviewConsumer(JsonSocket):
    """ws/review/: the live review queue of a teacher's classes."""

    socket_kind = "review"

    async def connect(self) -> None:
        self.user = self.scope.get("user")
        self.classroom_ids: set[int] = set()
        self.monitor_id: int | None = None  # the class whose monitor this socket follows
        if not await self.may_connect():
            return await self.close(code=CLOSE_FORBIDDEN)
        await self.channel_layer.group_add(events.person_group(self.user.id), self.channel_name)
        await self.accept()
        redis_watch.watch(self)

    async def rejoin_groups(self, event: dict) -> None:
        self.classroom_ids = set()  # still_allowed joins them all again
        await self.channel_layer.group_add(events.person_group(self.user.id), self.channel_name)
        if await self.still_allowed():
            await self.frame_sync({})
            if self.monitor_id is not None:
                await self.send_monitor()

    async def disconnect(self, code: int) -> None:
        redis_watch.forget(self)
        for classroom_id in getattr(self, "classroom_ids", ()):
            await self.channel_layer.group_discard(events.reviewers_group(classroom_id), self.channel_name)
        if getattr(self, "user", None) and self.user.is_authenticated:
            await self.channel_layer.group_discard(events.person_group(self.user.id), self.channel_name)

    async def still_allowed(self) -> bool:
        """Re-read the classes this person reviews now; follow them in and out of groups."""

        ids = await _db(lambda: set(classrooms_reviewed_by(self.user).values_list("id", flat=True)))
        for gone in self.classroom_ids - ids:
            await self.channel_layer.group_discard(events.reviewers_group(gone), self.channel_name)
        for new in ids - self.classroom_ids:
            await self.channel_layer.group_add(events.reviewers_group(new), self.channel_name)
        self.classroom_ids = ids
        # A monitor's socket is for its one class: leaving it closes the socket.
        monitor_id = getattr(self, "monitor_id", None)
        return bool(ids) and (monitor_id is None or monitor_id in ids)

    async def frame_sync(self, frame: dict) -> None:
        def read():
            replies = [selectors.reviewer_view(r, viewer=self.user) for r in selectors.review_queue(self.user)]
            return replies, selectors.queue_header(classrooms_reviewed_by(self.user))

        queue, header = await _db(read)
        drafting = await _db(self.drafting_status)
        await self.send_json({"type": "queue", "replies": queue, "classes": header, "drafting": drafting})

    async def frame_drafting(self, frame: dict) -> None:
        """Whether the model can draft now (the page asks again while it cannot)."""
        await self.send_json({"type": "drafting", "drafting": await _db(self.drafting_status)})

    def drafting_status(self) -> dict:
        return selectors.drafting_status_for(classrooms_reviewed_by(self.user).select_related("school"))

    async def frame_monitor(self, frame: dict) -> None:
        """Follow one class's monitor (tutor.selectors.class_monitor): its rows now, and
        again whenever a reply of that class changes. Only a class this person reviews."""
        classroom_id = frame.get("classroom_id")
        if (
            not isinstance(classroom_id, int)
            or isinstance(classroom_id, bool)
            or classroom_id not in self.classroom_ids
        ):
            self.monitor_id = None
            return await self.send_error("not_found", _("That class is not one of yours."))
        self.monitor_id = classroom_id
        await self.send_monitor()

    async def send_monitor(self) -> None:
        def read():
            return selectors.class_monitor(selectors.classroom_for_reviewer(self.user, self.monitor_id))

        try:
            rows = await _db(read)
        except Http404:
            self.monitor_id = None
            return
        await self.send_json({"type": "monitor", "classroom_id": self.monitor_id, "rows": rows})

    async def review_changed(self, event: dict) -> None:
        monitor_id = getattr(self, "monitor_id", None)
        if monitor_id is not None:  # a monitor's socket shows rows, not review cards
            if event.get("classroom_id") == monitor_id:
                await self.send_monitor()
            return
        if event.get("decided"):
            # Only this class's reviewers are in the group (re-checked on every frame and
            # on access.changed), and the id is all that goes: no read per socket.
            return await self.send_json({"type": "reply", "reply": {"id": event["reply_id"], "decided": True}})
        try:
            reply = await _db(selectors.reply_for_reviewer, self.user, event["reply_id"])
        except Http404:
            return
        await self.send_json({"type": "reply", "reply": await _db(selectors.reviewer_view, reply, viewer=self.user)})

    async def review_progress(self, event: dict) -> None:
        if getattr(self, "monitor_id", None) is not None:
            return
        # Sent only to this class's reviewers group; membership is re-checked at each
        # frame and on access.changed, which removal from a class sends at once.
        await self.send_json(
            {"type": "progress", "reply_id": event["reply_id"], "attempt": event["attempt"], "text": event["text"]}
        )


class AlertConsumer(JsonSocket):
    """ws/alerts/: urgent safeguarding alerts, as a banner on every page of the people
    who may be alerted (class reviewers, designated staff, school admins). Banners carry
    no student and no words; each event is re-read through the alert's access rule."""

    async def connect(self) -> None:
        self.user = self.scope.get("user")
        if not self.user or not self.user.is_authenticated or not await self.still_allowed():
            return await self.close(code=CLOSE_FORBIDDEN)
        await self.join_groups()
        await self.accept()
        redis_watch.watch(self)

    async def join_groups(self) -> None:
        await self.channel_layer.group_add(events.alerts_group(self.user.id), self.channel_name)
        await self.channel_layer.group_add(events.person_group(self.user.id), self.channel_name)

    async def redis_restarted(self) -> None:
        await self.join_groups()
        await self.frame_sync({})  # alerts raised while nobody was in the group

    async def disconnect(self, code: int) -> None:
        redis_watch.forget(self)
        if getattr(self, "user", None) and self.user.is_authenticated:
            await self.channel_layer.group_discard(events.alerts_group(self.user.id), self.channel_name)
            await self.channel_layer.group_discard(events.person_group(self.user.id), self.channel_name)

    async def still_allowed(self) -> bool:
        def allowed():
            self.user.refresh_from_db(fields=["is_active", "is_school_admin", "school"])
            return may_receive_alerts(self.user)

        return await _db(allowed)

    async def frame_sync(self, frame: dict) -> None:
        def read():
            return [safeguarding_selectors.banner_view(a) for a in safeguarding_selectors.open_alerts_for(self.user)]

        await self.send_json({"type": "alerts", "alerts": await _db(read)})

    async def alert_changed(self, event: dict) -> None:
        banner = await _db(safeguarding_selectors.alert_banner_for, self.user, event["alert_id"])
        if banner is not None:
            await self.send_json({"type": "alert", "alert": banner})
