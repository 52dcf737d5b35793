"""Drafts from an OpenAI-compatible server: vLLM, SGLang, llama.cpp's llama-server,
Ollama, LM Studio, OpenGateLLM / Albert API, `transformers serve`.

Imports neither torch nor transformers: a worker in this mode is a small HTTP client,
and a 1-CPU machine can serve many classes.

How it works
------------
* One event loop in a thread of its own carries every stream of the process over one
  pooled HTTP client (httpx2). `draft()` (any thread) hands its request to the loop and
  waits, polling `should_stop` and calling `on_text` in its own thread. Stopping cancels
  the stream's task, which closes the connection at once, so the server frees the slot.
* At most MAX_BATCH streams run at once per worker (the model's `concurrency`); more
  wait their turn.
* A stream ends with `data: [DONE]` (vLLM, llama-server, Ollama) or with the response
  closing after a `finish_reason` (transformers serve sends no [DONE]). A connection that
  closes before either is a failure.
* Failures before the first token (connection refused, 429, 5xx, timeouts) are tried
  again with backoff; a failure after text has streamed restarts the draft from the
  start (the caller's on_text then shows the new text). When every try fails the draft
  raises DraftPostponed with a plain reason for the teacher: the reply stays owed and
  the reconciler tries it again later. A request the server refuses for itself (400)
  raises ValueError: that draft fails and the teacher sees why.
* Prompt budget: the model's own tokenizer and chat template (`tokenizer.json` and
  `chat_template.jinja` / `tokenizer_config.json` in the TOKENIZER folder, read with the
  `tokenizers` library and Jinja2) when they are on disk, otherwise an estimate from
  above; the context window is CONTEXT_WINDOW, else what the server reports, else 4096.

Config keys (see tutor/model_settings.py for the settings that fill them):
BASE_URL (…/v1), MODEL (the server's name for the model; empty: the only one it lists),
API_KEY or API_KEY_FILE, MAX_BATCH (concurrent streams), MAX_NEW_TOKENS,
CONNECT_TIMEOUT, FIRST_TOKEN_TIMEOUT, TOTAL_TIMEOUT (seconds), RETRIES, TOKENIZER,
CONTEXT_WINDOW, LOGPROBS (auto / on / off), and generation settings passed to the server
as they are: TEMPERATURE, TOP_P, TOP_K, MIN_P, SEED, REPETITION_PENALTY,
FREQUENCY_PENALTY, PRESENCE_PENALTY, STOP, EXTRA_BODY (a dict merged into the request).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import math
import random
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx2
from django.utils.translation import gettext_noop

from inference.engine import Draft, DraftJob, DraftPostponed, ModelUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")

EMIT_INTERVAL = 0.1  # seconds between two on_text calls of one draft
POLL_INTERVAL = 0.05  # seconds between two should_stop polls of one draft
DEFAULT_CONTEXT_WINDOW = 4096
BACKOFF_FIRST = 0.5  # seconds before the second try; doubles each time
BACKOFF_MAX = 8.0
REPROBE_SECONDS = 30.0  # how often to ask a server that never answered for its model list
# Request fields taken from the config as they are (the OpenAI names, in capitals there).
# top_k, min_p and repetition_penalty are not OpenAI's, but vLLM, SGLang, llama-server
# and Ollama read them; a server that does not know a field ignores it.
GENERATION_FIELDS = (
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "seed",
    "repetition_penalty",
    "frequency_penalty",
    "presence_penalty",
    "stop",
)

# Reasons a teacher reads on the review card: stored in English, shown translated.
SERVER_DOWN = gettext_noop("The model server does not answer.")
SERVER_BUSY = gettext_noop("The model server is busy.")
SERVER_UNREADABLE = gettext_noop("The model server sent an answer the tutor cannot read.")
SERVER_STOPPED = gettext_noop("The model server stopped in the middle of a draft.")
SERVER_NO_MODEL = gettext_noop("The model server does not offer this class's model.")
SERVER_REFUSED_KEY = gettext_noop("The model server refused the tutor's access key.")


class _TryAgain(Exception):
    """One try failed in a way another try may not: `reason` is for the teacher,
    `detail` for the worker's log."""

    def __init__(self, reason: str, detail: str, retry_after: float | None = None):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.retry_after = retry_after


@dataclass
class _Stream:
    """What one draft has received so far; written by the loop, read by the caller."""

    text: str = ""
    first_token_at: float | None = None
    finish_reason: str | None = None
    logprobs: list[float] = field(default_factory=list)
    usage: dict = field(default_factory=dict)
    server_model: str = ""
    tries: int = 0
    restarts: int = 0


def _secret(config: dict) -> str:
    path = str(config.get("API_KEY_FILE") or "").strip()
    if path:
        try:
            return Path(path).expanduser().read_text().strip()
        except OSError as exc:
            raise ModelUnavailable(f"Cannot read the model server's API key from {path}: {exc}.") from exc
    return str(config.get("API_KEY") or "").strip()


def _seconds(config: dict, key: str, default: float) -> float:
    value = config.get(key)
    return float(value) if value not in (None, "") else default


class OpenAIEngine:
    """See the module docstring. Thread-safe: draft() may be called from many threads."""

    def __init__(self, config: dict):
        self.config = dict(config)
        base_url = str(config.get("BASE_URL") or "").strip().rstrip("/")
        if not base_url.startswith(("http://", "https://")):
            raise ModelUnavailable(
                f"The OpenAI-compatible model needs the server's address (BASE_URL, e.g. http://127.0.0.1:8000/v1), "
                f"not {base_url!r}."
            )
        self.base_url = base_url
        self.requested_model = str(config.get("MODEL") or "").strip()
        self.model_name = self.requested_model or base_url
        self.max_concurrency = max(1, int(config.get("MAX_BATCH") or 8))
        self.max_new_default = int(config.get("MAX_NEW_TOKENS") or 160)
        self.connect_timeout = _seconds(config, "CONNECT_TIMEOUT", 5.0)
        self.first_token_timeout = _seconds(config, "FIRST_TOKEN_TIMEOUT", 60.0)
        self.total_timeout = _seconds(config, "TOTAL_TIMEOUT", 300.0)
        self.retries = int(config.get("RETRIES") if config.get("RETRIES") not in (None, "") else 3)
        logprobs = str(config.get("LOGPROBS") or "auto").lower()
        self._send_logprobs = logprobs not in ("off", "0", "false", "no")
        self._logprobs_required = logprobs in ("on", "1", "true", "yes")
        self.generation = {
            name: config[name.upper()] for name in GENERATION_FIELDS if config.get(name.upper()) not in (None, "")
        }
        self.extra_body = dict(config.get("EXTRA_BODY") or {})
        headers = {"Accept": "text/event-stream"}
        key = _secret(config)
        if key:
            headers["Authorization"] = f"Bearer {key}"

        self._tokenizer = self._load_tokenizer(str(config.get("TOKENIZER") or "").strip())
        self._reported_context: int | None = None
        self._configured_context = int(config.get("CONTEXT_WINDOW") or 0) or None
        self.offered_models: list[str] | None = None  # what /models listed, once it answered
        self._probed_at = time.monotonic()

        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="openai-streams", daemon=True)
        self._thread.start()

        async def setup():
            self._slots = asyncio.Semaphore(self.max_concurrency)
            self._client = httpx2.AsyncClient(
                base_url=base_url + "/",
                headers=headers,
                # read: the longest silence between two chunks of a stream.
                timeout=httpx2.Timeout(
                    connect=self.connect_timeout, read=self.first_token_timeout, write=30.0, pool=None
                ),
                limits=httpx2.Limits(
                    max_connections=self.max_concurrency + 2, max_keepalive_connections=self.max_concurrency
                ),
            )

        self._run(setup())
        self.settings = {
            "backend": "openai",
            "server": base_url,
            "max_concurrency": self.max_concurrency,
            **self.generation,
        }
        self.probe()

    # ------------------------------------------------------------------ the server
    def _run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def probe(self) -> bool:
        """Ask the server which models it offers (and their context length). True if it
        answered. A server that is down is not an error here: drafts wait for it."""
        try:
            return self._run(self._probe(), timeout=self.connect_timeout * 2 + 5)
        except Exception as exc:  # noqa: BLE001 - a probe never stops the worker
            log.warning("the model server at %s does not answer yet (%s); drafts wait for it", self.base_url, exc)
            return False

    async def _probe(self) -> bool:
        try:
            response = await self._client.get("models", timeout=self.connect_timeout * 2)
        except httpx2.HTTPError as exc:
            log.warning(
                "the model server at %s does not answer (%s); drafts wait for it and are tried again",
                self.base_url,
                type(exc).__name__,
            )
            return False
        if response.status_code in (401, 403):
            log.error("the model server at %s refuses the API key (HTTP %s)", self.base_url, response.status_code)
            return True
        if response.status_code != 200:
            log.warning("the model server at %s answers HTTP %s to /models", self.base_url, response.status_code)
            return True
        try:
            models = [m for m in response.json().get("data", []) if isinstance(m, dict)]
        except (ValueError, AttributeError):
            log.warning("the model server at %s sent a model list that is not JSON", self.base_url)
            return True
        self.offered_models = [str(m.get("id", "")) for m in models]
        if not self.requested_model and len(models) == 1:
            self.requested_model = self.model_name = self.offered_models[0]
        entry = next((m for m in models if m.get("id") == self.requested_model), None)
        if entry is None:
            log.error(
                "the model server at %s does not offer the model %r (it offers: %s); drafts wait until it does",
                self.base_url,
                self.requested_model,
                ", ".join(self.offered_models) or "nothing",
            )
            return True
        self._reported_context = _context_length(entry)
        log.info(
            "model server %s offers %s (context %s tokens)", self.base_url, self.requested_model, self.context_window
        )
        return True

    @property
    def context_window(self) -> int:
        return self._configured_context or self._reported_context or DEFAULT_CONTEXT_WINDOW

    # ------------------------------------------------------------------ prompt budget
    def count_tokens(self, messages: list[dict]) -> int:
        """Tokens the prompt takes: with the model's own tokenizer and chat template when
        they are on disk (what the server itself counts), else an estimate from above."""
        if self._tokenizer is not None:
            return self._tokenizer.count(messages)
        return estimate_tokens(messages)

    @staticmethod
    def _load_tokenizer(folder: str) -> _Tokenizer | None:
        if not folder:
            return None
        try:
            return _Tokenizer(Path(folder).expanduser())
        except (OSError, ValueError) as exc:
            log.warning("cannot read the tokenizer in %s (%s): prompt lengths are estimated", folder, exc)
            return None

    # ------------------------------------------------------------------ drafting
    def draft(self, job: DraftJob) -> Draft:
        started = time.monotonic()
        wanted = int(job.max_new_tokens) if job.max_new_tokens and job.max_new_tokens > 0 else self.max_new_default
        max_new = max(1, min(wanted, self.max_new_default))
        state = _Stream()
        future = asyncio.run_coroutine_threadsafe(self._draft(job.messages, max_new, state, started), self._loop)
        emitted = ""
        last_emit = 0.0
        cancelled = False
        try:
            while True:
                if concurrent.futures.wait([future], POLL_INTERVAL).done:
                    future.result()  # raises what the draft raised
                    break
                if job.should_stop is not None and job.should_stop():
                    cancelled = True
                    future.cancel()  # closes the stream: the server frees the slot at once
                    break
                now = time.monotonic()
                text = state.text.strip()
                if job.on_text is not None and text != emitted and now - last_emit >= EMIT_INTERVAL:
                    job.on_text(text)
                    emitted, last_emit = text, now
        except BaseException:
            future.cancel()
            raise
        text = state.text.strip()
        if cancelled:
            return Draft(text=text, model_name=self.model_name, cancelled=True, seconds=time.monotonic() - started)
        if job.on_text is not None and text != emitted:
            job.on_text(text)
        usage = state.usage or {}
        settings = dict(self.settings, max_new_tokens=max_new, finish_reason=state.finish_reason)
        if state.restarts:
            settings["restarts"] = state.restarts
        if state.tries > 1:
            settings["tries"] = state.tries
        probs = [math.exp(lp) for lp in state.logprobs]
        return Draft(
            text=text,
            model_name=state.server_model or self.model_name,
            settings=settings,
            prompt_tokens=int(usage.get("prompt_tokens") or self.count_tokens(job.messages)),
            new_tokens=int(usage.get("completion_tokens") or len(state.logprobs)),
            mean_token_prob=(sum(probs) / len(probs)) if probs else None,
            first_token_s=(state.first_token_at - started) if state.first_token_at is not None else None,
            seconds=time.monotonic() - started,
        )

    def _body(self, messages: list[dict], max_new: int) -> dict:
        body = {
            "model": self.requested_model,
            "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": max_new,
            **self.generation,
            **self.extra_body,
        }
        if self._send_logprobs:
            body["logprobs"] = True
        if not self.requested_model:
            body.pop("model")
        return body

    async def _draft(self, messages: list[dict], max_new: int, state: _Stream, started: float) -> None:
        """Try up to 1 + RETRIES times; raise DraftPostponed when none succeeds."""
        last: _TryAgain | None = None
        async with self._slots:
            if self.offered_models is None and time.monotonic() - self._probed_at > REPROBE_SECONDS:
                self._probed_at = time.monotonic()
                await self._probe()  # it was down when the worker started: learn its context length now
            tries = 0
            while tries <= self.retries:
                if tries:
                    delay = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (tries - 1)) * random.uniform(0.8, 1.2)
                    if last is not None and last.retry_after is not None:
                        delay = min(BACKOFF_MAX * 4, max(delay, last.retry_after))
                    await asyncio.sleep(delay)
                tries += 1
                state.tries += 1
                if state.text:
                    # Text streamed, then the stream failed: start this draft again, whole.
                    state.restarts += 1
                    state.text, state.logprobs, state.finish_reason, state.usage = "", [], None, {}
                try:
                    await asyncio.wait_for(self._stream(self._body(messages, max_new), state), self.total_timeout)
                    return
                except _TryAgain as exc:
                    last = exc
                except TimeoutError:
                    last = _TryAgain(SERVER_DOWN, f"no complete answer within {self.total_timeout:.0f} s")
                except _LogprobsRefused:
                    self._send_logprobs = False  # this server does not do logprobs: ask without them
                    log.warning("the model server at %s refuses logprobs; asking without them", self.base_url)
                    tries -= 1
                    continue
                log.warning("model server %s, try %d of %d: %s", self.base_url, tries, self.retries + 1, last.detail)
        raise DraftPostponed(last.reason if last else SERVER_DOWN)

    async def _stream(self, body: dict, state: _Stream) -> None:
        """One request, streamed into `state`. Raises _TryAgain for what another try may
        mend, ValueError for a request the server refuses for itself."""
        sent = time.monotonic()
        try:
            async with asyncio.timeout(self.first_token_timeout) as first_token:
                async with self._client.stream("POST", "chat/completions", json=body) as response:
                    if response.status_code != 200:
                        await self._refused(response, body)
                    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
                    if content_type == "application/json":  # the server ignored stream=true
                        self._read_choice(json.loads(await response.aread()), state, whole=True)
                        return
                    done = await self._read_events(response, state, first_token)
        except TimeoutError:
            if state.first_token_at is None:
                raise _TryAgain(SERVER_DOWN, f"no first token within {self.first_token_timeout:.0f} s") from None
            raise
        except httpx2.ConnectError as exc:
            raise _TryAgain(SERVER_DOWN, f"cannot connect ({exc})") from exc
        except httpx2.SSEError as exc:  # not an event stream, or an event past 1 MiB
            raise _TryAgain(SERVER_UNREADABLE, f"not a readable event stream ({exc})") from exc
        except httpx2.TimeoutException as exc:
            what = "no first token" if state.first_token_at is None else "the stream fell silent"
            raise _TryAgain(SERVER_DOWN, f"{what} ({type(exc).__name__})") from exc
        except (httpx2.TransportError, httpx2.StreamError) as exc:
            if state.text:
                raise _TryAgain(SERVER_STOPPED, f"the stream broke after {len(state.text)} characters ({exc})") from exc
            raise _TryAgain(SERVER_DOWN, f"the connection failed ({type(exc).__name__}: {exc})") from exc
        if not done and state.finish_reason is None:
            raise _TryAgain(
                SERVER_STOPPED if state.text else SERVER_DOWN,
                f"the stream ended without [DONE] or a finish_reason after {time.monotonic() - sent:.1f} s",
            )

    async def _read_events(self, response: httpx2.Response, state: _Stream, first_token: asyncio.Timeout) -> bool:
        """Read the event stream into `state`; True if it ended with [DONE]."""
        async for event in httpx2.EventSource(response):
            data = event.data.strip()
            if not data:
                continue
            if data == "[DONE]":
                return True
            try:
                chunk = json.loads(data)
            except ValueError:
                raise _TryAgain(SERVER_UNREADABLE, f"an event that is not JSON: {data[:80]!r}") from None
            if not isinstance(chunk, dict):
                raise _TryAgain(SERVER_UNREADABLE, f"an event that is not a JSON object: {data[:80]!r}")
            if chunk.get("error"):  # vLLM and others report failures inside the stream
                raise _TryAgain(SERVER_STOPPED if state.text else SERVER_DOWN, f"error event: {data[:200]}")
            self._read_choice(chunk, state, whole=False)
            if state.first_token_at is not None and first_token.when() is not None:
                first_token.reschedule(None)  # from here on only TOTAL_TIMEOUT and the read timeout apply
        return False

    @staticmethod
    def _read_choice(chunk: dict, state: _Stream, *, whole: bool) -> None:
        if chunk.get("model"):
            state.server_model = str(chunk["model"])
        if isinstance(chunk.get("usage"), dict):
            state.usage = chunk["usage"]
        choices = chunk.get("choices") or []
        if not choices or not isinstance(choices[0], dict):
            return  # e.g. the closing usage chunk
        choice = choices[0]
        part = (choice.get("message") if whole else choice.get("delta")) or {}
        # Only `content` is the reply; `reasoning_content` (a thinking model's notes) is not.
        text = part.get("content") if isinstance(part, dict) else None
        if text:
            if state.first_token_at is None:
                state.first_token_at = time.monotonic()
            state.text += str(text)
        logprobs = choice.get("logprobs")
        if isinstance(logprobs, dict):
            for token in logprobs.get("content") or []:
                if isinstance(token, dict) and isinstance(token.get("logprob"), int | float):
                    state.logprobs.append(float(token["logprob"]))
        if choice.get("finish_reason"):
            state.finish_reason = str(choice["finish_reason"])
            if state.first_token_at is None:
                state.first_token_at = time.monotonic()

    async def _refused(self, response: httpx2.Response, body: dict) -> None:
        """A non-200 answer: raise what it means."""
        raw = (await response.aread())[:2000].decode("utf-8", "replace")
        status = response.status_code
        detail = f"HTTP {status}: {raw[:300]}"
        if status == 429:
            raise _TryAgain(SERVER_BUSY, detail, retry_after=_retry_after(response))
        if status >= 500:
            raise _TryAgain(SERVER_DOWN, detail, retry_after=_retry_after(response))
        if status in (401, 403):
            raise _TryAgain(SERVER_REFUSED_KEY, detail)
        lowered = raw.lower()
        if body.get("logprobs") and "logprob" in lowered and not self._logprobs_required:
            raise _LogprobsRefused(detail)
        model = str(body.get("model") or "")
        if status == 404 or (model and model.lower() in lowered) or ("model" in lowered and "not found" in lowered):
            raise _TryAgain(SERVER_NO_MODEL, f"unknown model {model!r}: {detail}")
        raise ValueError(f"The model server refused the request ({detail[:200]}).")

    def close(self) -> None:
        """Close the connections and stop the loop (tests and benchmarks)."""

        async def shut():
            await self._client.aclose()

        try:
            self._run(shut(), timeout=5)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)


def estimate_tokens(messages: list[dict]) -> int:
    """From above: a UTF-8 byte in three is a token (real tokenizers give about one in four
    for French or English), 8 per turn for the chat template's markers (more than ChatML,
    Llama 3, Mistral or Gemma use), and 64 for a default system prompt that some templates
    add when there is none."""
    total = 8 + sum(math.ceil(len(str(m.get("content") or "").encode("utf-8")) / 3) + 8 for m in messages)
    if not any(m.get("role") == "system" for m in messages):
        total += 64
    return total


class _Tokenizer:
    """A model's tokenizer.json (the Rust `tokenizers` library: no torch) and its chat
    template (chat_template.jinja or tokenizer_config.json), rendered as transformers does."""

    def __init__(self, folder: Path):
        from tokenizers import Tokenizer

        file = folder if folder.is_file() else folder / "tokenizer.json"
        if not file.is_file():
            raise ValueError("no tokenizer.json")
        self._tokenizer = Tokenizer.from_file(str(file))
        self._lock = threading.Lock()
        root = file.parent
        config = {}
        if (root / "tokenizer_config.json").is_file():
            config = json.loads((root / "tokenizer_config.json").read_text())
        source = config.get("chat_template")
        if isinstance(source, list):  # named templates: the default one
            source = next((t.get("template") for t in source if t.get("name") == "default"), None)
        if (root / "chat_template.jinja").is_file():
            source = (root / "chat_template.jinja").read_text()
        self._template = None
        self._specials = {
            name: config[name] if isinstance(config.get(name), str) else (config.get(name) or {}).get("content", "")
            for name in ("bos_token", "eos_token", "pad_token", "unk_token")
        }
        if source:
            from jinja2.sandbox import ImmutableSandboxedEnvironment

            environment = ImmutableSandboxedEnvironment(
                trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"]
            )
            environment.filters["tojson"] = lambda value, indent=None, **_: json.dumps(
                value, ensure_ascii=False, indent=indent
            )
            environment.globals["raise_exception"] = _template_error
            environment.globals["strftime_now"] = lambda fmt: time.strftime(fmt)
            self._template = environment.from_string(source)

    def count(self, messages: list[dict]) -> int:
        turns = [{"role": m["role"], "content": str(m.get("content") or "")} for m in messages]
        if self._template is not None:
            try:
                text = self._template.render(messages=turns, add_generation_prompt=True, **self._specials)
            except Exception as exc:  # noqa: BLE001 - a template we cannot render: estimate
                log.warning("cannot render the chat template (%s): prompt lengths are estimated", exc)
                self._template = None
            else:
                with self._lock:
                    return len(self._tokenizer.encode(text, add_special_tokens=False).ids)
        with self._lock:
            contents = sum(len(self._tokenizer.encode(t["content"], add_special_tokens=False).ids) for t in turns)
        return contents + estimate_tokens([{"role": t["role"], "content": ""} for t in turns])


def _template_error(message: str):
    raise ValueError(message)


class _LogprobsRefused(Exception):
    pass


def _retry_after(response: httpx2.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _context_length(entry: dict) -> int | None:
    """The context length a /models entry reports: vLLM `max_model_len`, OpenGateLLM
    `max_context_length`, LM Studio / others `context_length`, llama-server `meta.n_ctx`
    (or the training length when that is all it says)."""
    meta = entry.get("meta") if isinstance(entry.get("meta"), dict) else {}
    for value in (
        entry.get("max_model_len"),
        entry.get("max_context_length"),
        entry.get("context_length"),
        entry.get("context_window"),
        meta.get("n_ctx"),
        meta.get("n_ctx_train"),
    ):
        if isinstance(value, int) and value > 0:
            return value
    return None
