"""Notice a Redis restart under open sockets, and put them back in their groups.

A restart empties every group; channels_redis reconnects by itself without closing the
sockets, so they stay open and silently receive nothing (measured: 367 of 500 sockets
stayed open in bench/load.py). One watcher per server process reads Redis's run_id every
few seconds; when it changes, each open socket of the process re-joins its groups and
catches up from the database.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Protocol

from django.conf import settings

log = logging.getLogger(__name__)

CHECK_SECONDS = 2.0


class Rejoining(Protocol):
    """An open socket that can re-join its groups."""

    async def redis_restarted(self) -> None: ...


_sockets: weakref.WeakSet = weakref.WeakSet()
_task: asyncio.Task | None = None


def watch(socket: Rejoining) -> None:
    """Register an open socket (call from its connect, on the server's event loop).
    The socket must have `async def redis_restarted(self)`."""
    global _task
    _sockets.add(socket)
    if _task is None or _task.done():
        _task = asyncio.get_running_loop().create_task(_watch())


def forget(socket: Rejoining) -> None:
    """The socket closed (call from its disconnect)."""
    _sockets.discard(socket)


async def _run_id(client: object) -> str | None:
    """Redis's run_id, or None while it does not answer.

    The call runs as a task of its own and is awaited with asyncio.wait, which never
    swallows a cancellation: redis-py, inside its own timeouts, can turn the watcher's
    cancellation into an error, and the watcher would then never stop (a server or a
    test's event loop waiting on it for ever).
    """
    info = asyncio.ensure_future(client.info("server"))
    try:
        done, _pending = await asyncio.wait({info}, timeout=CHECK_SECONDS + 1)
    finally:
        if not info.done():
            info.cancel()
    if info not in done or info.cancelled() or info.exception() is not None:
        return None  # down, or too slow: wait until it answers again
    return info.result()["run_id"]


async def _watch() -> None:
    import redis.asyncio as redis

    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=CHECK_SECONDS, socket_connect_timeout=1)
    known = None
    try:
        while _sockets:
            run_id = await _run_id(client)
            if run_id and known and run_id != known:
                log.warning("Redis restarted: %d open socket(s) re-join their groups", len(_sockets))
                for socket in list(_sockets):
                    try:
                        await socket.redis_restarted()
                    except Exception:  # it closed meanwhile
                        _sockets.discard(socket)
            known = run_id or known
            await asyncio.sleep(CHECK_SECONDS)
    finally:
        await client.aclose()
