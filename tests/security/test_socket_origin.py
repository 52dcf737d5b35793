"""Only the site's own pages may open a socket: the Origin must match scheme, host and
port, as Django's CSRF check requires of a POST. AllowedHostsOriginValidator compared
host names only, so a page on another port of the same machine got in."""

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from tests.tutor.helpers import ask, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)


async def opens(path: str, user, *, host: bytes, origin: bytes | None, scheme: str = "ws", extra=()) -> bool:
    from tutor.asgi import application

    headers = [(b"host", host), (b"cookie", await sync_to_async(session_cookie)(user)), *extra]
    if origin is not None:
        headers.append((b"origin", origin))
    communicator = WebsocketCommunicator(application, path, headers=headers)
    communicator.scope["scheme"] = scheme
    connected, _code = await communicator.connect(timeout=5)
    await communicator.disconnect()
    return connected


@pytest.mark.parametrize(
    "origin, scheme, accepted",
    [
        (b"http://127.0.0.1:8100", "ws", True),
        (b"http://127.0.0.1:9999", "ws", False),  # another port of the same machine
        (b"http://127.0.0.1", "ws", False),
        (b"https://127.0.0.1:8100", "ws", False),  # another scheme
        (b"http://localhost:8100", "ws", False),  # another name, though allowed, is another site
        (b"http://evil.example:8100", "ws", False),
        (b"null", "ws", False),  # a sandboxed frame or a file
        (None, "ws", False),  # browsers always send one
        (b"https://127.0.0.1:8100", "wss", True),
        (b"http://127.0.0.1:8100", "wss", False),
    ],
)
async def test_a_socket_opens_only_from_the_sites_own_origin(student, classroom, origin, scheme, accepted):
    reply = await sync_to_async(ask)(student, classroom)
    path = f"/ws/chat/{reply.conversation_id}/"
    assert await opens(path, student, host=b"127.0.0.1:8100", origin=origin, scheme=scheme) is accepted


async def test_a_host_outside_allowed_hosts_is_refused_even_from_its_own_origin(student, classroom):
    reply = await sync_to_async(ask)(student, classroom)
    path = f"/ws/chat/{reply.conversation_id}/"
    assert not await opens(path, student, host=b"evil.example", origin=b"http://evil.example")


async def test_the_trusted_origins_behind_a_proxy_are_accepted_with_their_port(student, classroom, settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://tutor.school.example", "https://*.academie.example:8443"]
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    reply = await sync_to_async(ask)(student, classroom)
    path = f"/ws/chat/{reply.conversation_id}/"
    behind_proxy = {"host": b"127.0.0.1:8000"}
    assert await opens(path, student, origin=b"https://tutor.school.example", **behind_proxy)
    assert await opens(path, student, origin=b"https://tutor.school.example:443", **behind_proxy)
    assert not await opens(path, student, origin=b"https://tutor.school.example:8443", **behind_proxy)
    assert not await opens(path, student, origin=b"http://tutor.school.example", **behind_proxy)
    assert await opens(path, student, origin=b"https://lyon.academie.example:8443", **behind_proxy)
    assert not await opens(path, student, origin=b"https://lyon.academie.example", **behind_proxy)
    # The proxy says the page came over HTTPS: the request's own origin is https://.
    forwarded = ((b"x-forwarded-proto", b"https"),)
    assert await opens(path, student, host=b"localhost", origin=b"https://localhost", extra=forwarded)
    assert not await opens(path, student, host=b"localhost", origin=b"http://localhost", extra=forwarded)
