"""Clients that behave like the browser's scripts: they reconnect by themselves with
backoff, catch up from the last version they have, and re-send a question typed while
offline under the same idempotency key. Used against real servers in fault tests and
benchmarks."""

from __future__ import annotations

import json
import random
import threading
import time

from django.conf import settings
from django.test import Client
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect


def session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


class LiveSocket:
    """A reconnecting socket; `frames` keeps every frame received, in order."""

    def __init__(self, port: int, path: str, cookie: str):
        self.url = f"ws://127.0.0.1:{port}{path}"
        self.headers = {"Cookie": cookie, "Origin": f"http://127.0.0.1:{port}"}
        self.frames: list[dict] = []
        self.reconnects = 0
        self.closes: list[int | None] = []
        self._ws = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self._connected.wait(20), f"could not connect to {self.url}"

    def on_open(self) -> None:
        """Called after each (re)connection; subclasses catch up here."""

    def _run(self):
        delay = 0.2
        while not self._stop.is_set():
            try:
                with connect(self.url, additional_headers=self.headers, open_timeout=5) as ws:
                    self._ws = ws
                    delay = 0.2
                    self._connected.set()
                    self.on_open()
                    for raw in ws:
                        frame = json.loads(raw)
                        with self._lock:
                            self.frames.append(frame)
                        self.on_frame(frame)
            except Exception as exc:  # closed, refused, or answered 500 while Redis was down: retry
                self.closes.append(getattr(getattr(exc, "rcvd", None), "code", None) or type(exc).__name__)
            self._ws = None
            if self._stop.is_set():
                return
            self.reconnects += 1
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 3)

    def on_frame(self, frame: dict) -> None:
        pass

    def send(self, frame: dict) -> bool:
        ws = self._ws
        if ws is None:
            return False
        try:
            ws.send(json.dumps(frame))
            return True
        except (ConnectionClosed, OSError):
            return False

    def wait_for(self, predicate, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            with self._lock:
                frames = self.frames[seen:]
            for frame in frames:
                seen += 1
                if predicate(frame):
                    return frame
            time.sleep(0.02)
        raise AssertionError(f"no matching frame in {timeout}s; last frames: {self.frames[-5:]}")

    def close(self):
        self._stop.set()
        if self._ws is not None:
            self._ws.close()
        self._thread.join(10)


class StudentChat(LiveSocket):
    def __init__(self, port: int, conversation_id: int, cookie: str):
        self.version = 0
        self.messages: dict[int, dict] = {}
        self.unacknowledged: dict[str, str] = {}  # client_id -> text, until the server shows it
        self.every_text_seen: list[str] = []
        super().__init__(port, f"/ws/chat/{conversation_id}/", cookie)

    def on_open(self):
        self.send({"type": "sync", "since": self.version})
        for client_id, text in list(self.unacknowledged.items()):
            self.send({"type": "ask", "text": text, "client_id": client_id})

    def on_frame(self, frame):
        if frame.get("type") == "messages":
            for message in frame["messages"]:
                self.messages[message["id"]] = message
                self.every_text_seen.append(message["text"])
                self.unacknowledged.pop(message.get("client_id") or "", None)
            self.version = max(self.version, frame.get("version", 0))
        elif frame.get("type") == "error" and frame.get("client_id") in self.unacknowledged:
            # Refused for a reason that will pass (the database restarting): try again shortly.
            threading.Timer(0.5, self.on_open).start()

    def ask(self, text: str, client_id: str):
        self.unacknowledged[client_id] = text
        self.send({"type": "ask", "text": text, "client_id": client_id})

    def answered_texts(self) -> list[str]:
        return [m["text"] for m in self.messages.values() if m["state"] == "answered"]


class ReviewSocket(LiveSocket):
    def __init__(self, port: int, cookie: str):
        super().__init__(port, "/ws/review/", cookie)

    def on_open(self):
        self.send({"type": "sync"})
