"""A small OpenAI-compatible server on loopback that misbehaves on purpose.

A real HTTP/1.1 server (the standard library's, one thread per connection, chunked
streams like uvicorn's) speaking /v1/models and /v1/chat/completions with `stream: true`.
Each request takes the next behaviour of the script; the last one is kept for every
request after it, so a test can say "from now on, answer 429" and wait for the effect.

Behaviours: "ok" (stream the reply, end with [DONE]), "eof" (no [DONE]: the stream ends
after its finish_reason, as `transformers serve` does), "die" (stream a few words, then
drop the connection without ending the chunked body), "429", "500", "silent" (headers,
then nothing), "not_json" (an event that is not JSON), "unknown_model" (400 naming the
model, as transformers serve answers), "no_logprobs" (400 refusing logprobs), "slow"
(one word every 0.2 s, for cancelling).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODEL = "peer-model"
REPLY = "Think about what a half and a third have in common: a common denominator."


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):
        if self.path.rstrip("/").endswith("/models"):
            self._json(200, {"object": "list", "data": [{"id": MODEL, "object": "model", "max_model_len": 1024}]})
        else:
            self._json(404, {"error": "not found"})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        peer = self.server.peer
        behaviour = peer._next()
        with peer.lock:
            peer.requests.append({"body": body, "headers": dict(self.headers), "behaviour": behaviour})
            peer.active += 1
            peer.max_active = max(peer.max_active, peer.active)
        try:
            self._answer(behaviour, body)
        except (BrokenPipeError, ConnectionResetError):
            with peer.lock:
                peer.disconnects.append(time.monotonic())
        finally:
            with peer.lock:
                peer.active -= 1

    def _json(self, status: int, payload: dict, headers: dict | None = None):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _start_stream(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _chunk(self, text: str):
        data = text.encode()
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _event(self, payload: dict):
        self._chunk("data: " + json.dumps(payload) + "\n\n")

    def _delta(self, content: str | None, finish: str | None = None, logprob: float | None = None) -> dict:
        choice: dict = {"index": 0, "delta": {"content": content} if content is not None else {}}
        if finish:
            choice["finish_reason"] = finish
        if logprob is not None:
            choice["logprobs"] = {"content": [{"token": content, "logprob": logprob}]}
        return {"object": "chat.completion.chunk", "model": MODEL, "choices": [choice]}

    def _answer(self, behaviour: str, body: dict):
        peer = self.server.peer
        if behaviour == "429":
            return self._json(429, {"error": {"message": "Too many requests"}}, {"Retry-After": "0"})
        if behaviour == "500":
            return self._json(500, {"error": {"message": "Internal error"}})
        if behaviour == "unknown_model" or body.get("model") != MODEL:
            return self._json(400, {"detail": f"Server is pinned to '{MODEL}'; requested '{body.get('model')}'."})
        if behaviour == "no_logprobs" and body.get("logprobs"):
            return self._json(400, {"error": {"message": "logprobs is not supported"}})
        self._start_stream()
        words = peer.reply.split(" ")
        if behaviour == "silent":
            peer.release.wait(30)
            return
        if behaviour == "not_json":
            self._event(self._delta(words[0]))
            self._chunk("data: {this is not json\n\n")
            self._chunk("")
            return
        max_tokens = int(body.get("max_tokens") or 1000)
        sent = 0
        for i, word in enumerate(words[:max_tokens]):
            if behaviour == "die" and i == 3:
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)  # no closing chunk: a broken stream
                return
            if behaviour == "slow":
                time.sleep(0.2)
            self._event(self._delta(word if i == 0 else " " + word, logprob=-0.1 if body.get("logprobs") else None))
            sent += 1
        finish = "length" if sent < len(words) else "stop"
        final = self._delta(None, finish)
        final["usage"] = {"prompt_tokens": 21, "completion_tokens": sent, "total_tokens": 21 + sent}
        self._event(final)
        if behaviour != "eof":
            self._chunk("data: [DONE]\n\n")
        self._chunk("")  # the end of the chunked body


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    peer: OpenAIPeer


class OpenAIPeer:
    """The misbehaving server. `behave(*names)` sets the script from the next request on."""

    def __init__(self, port: int = 0, reply: str = REPLY):
        self.lock = threading.Lock()
        self.script: list[str] = ["ok"]
        self.requests: list[dict] = []
        self.disconnects: list[float] = []
        self.active = 0
        self.max_active = 0
        self.reply = reply
        self.release = threading.Event()  # ends "silent" streams
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.peer = self
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def behave(self, *names: str) -> None:
        with self.lock:
            self.script = list(names)

    def _next(self) -> str:
        with self.lock:
            return self.script.pop(0) if len(self.script) > 1 else self.script[0]

    def stop(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()
