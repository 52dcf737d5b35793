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

from django.conf import settings

log = logging.getLogger(__name__)

CHECK_SECONDS = 2.0

_sockets: weakref.WeakSet = weakref.WeakSet()
_task: asyncio.Task | None = None


def watch(socket) -> None:
    """Register an open socket (call from its connect, on the server's event loop).
    The socket must have `async def redis_restarted(self)`."""
    global _task
    _sockets.add(socket)
    if _task is None or _task.done():
        _task = asyncio.get_running_loop().create_task(_watch())


def forget(socket) -> None:
    """The socket closed (call from its disconnect)."""
    _sockets.discard(socket)


async def _watch() -> None:
    import redis.asyncio as redis

    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=CHECK_SECONDS, socket_connect_timeout=1)
    known = None
    try:
        while _sockets:
            try:
                run_id = (await client.info("server"))["run_id"]
            except Exception:
                run_id = None  # down: wait until it answers again
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
