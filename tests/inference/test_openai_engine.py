"""The OpenAI-compatible backend against a real HTTP server on loopback that misbehaves
on purpose (tests/inference/openai_peer.py). Each bad answer gets a plain reason for the
teacher, and nothing is lost: the draft either comes back whole or is postponed."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest

from inference.backends.openai_backend import (
    SERVER_DOWN,
    SERVER_NO_MODEL,
    SERVER_UNREADABLE,
    OpenAIEngine,
)
from inference.engine import DraftJob, DraftPostponed
from tests.inference.openai_peer import MODEL, REPLY, OpenAIPeer
from tests.processes import ROOT, free_port

MESSAGES = [{"role": "system", "content": "Be a tutor."}, {"role": "user", "content": "How do I add 1/2 and 1/3?"}]


@pytest.fixture
def peer():
    server = OpenAIPeer()
    yield server
    server.stop()


def engine_for(url: str, **extra) -> OpenAIEngine:
    config = {
        "BACKEND": "openai",
        "BASE_URL": url,
        "MODEL": MODEL,
        "RETRIES": 2,
        "CONNECT_TIMEOUT": 1,
        "FIRST_TOKEN_TIMEOUT": 2,
        "TOTAL_TIMEOUT": 20,
    }
    config.update(extra)
    return OpenAIEngine(config)


@pytest.fixture
def engines():
    made = []

    def make(url, **extra):
        made.append(engine_for(url, **extra))
        return made[-1]

    yield make
    for engine in made:
        engine.close()


def test_a_draft_streams_into_on_text_and_reads_usage_logprobs_and_finish(peer, engines, tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text("s3cret\n")
    engine = engines(peer.url, API_KEY_FILE=str(key_file), REPETITION_PENALTY=1.2, SEED=7, TEMPERATURE=0)
    seen = []
    draft = engine.draft(DraftJob(messages=MESSAGES, max_new_tokens=100, on_text=seen.append))

    assert draft.text == REPLY
    assert seen[-1] == REPLY and len(seen) >= 1
    assert draft.prompt_tokens == 21 and draft.new_tokens == len(REPLY.split())
    assert draft.mean_token_prob == pytest.approx(0.9048, abs=1e-3)  # exp(-0.1) for every token
    assert draft.settings["finish_reason"] == "stop" and draft.settings["backend"] == "openai"
    assert draft.model_name == MODEL and not draft.cancelled
    body = peer.requests[-1]["body"]
    assert body["stream"] is True and body["model"] == MODEL and body["max_tokens"] == 100
    assert body["messages"] == MESSAGES
    # Generation settings go to the server as the request's own fields.
    assert (body["repetition_penalty"], body["seed"], body["temperature"]) == (1.2, 7, 0)
    assert peer.requests[-1]["headers"]["Authorization"] == "Bearer s3cret"
    # The context length the server reports sets the prompt budget.
    assert engine.context_window == 1024


def test_a_stream_that_ends_without_done_is_complete_after_its_finish_reason(peer, engines):
    peer.behave("eof")
    draft = engines(peer.url).draft(DraftJob(messages=MESSAGES, max_new_tokens=5))
    assert draft.text == " ".join(REPLY.split()[:5])
    assert draft.settings["finish_reason"] == "length"
    assert len(peer.requests) == 1


def test_429_and_500_before_the_first_token_are_tried_again(peer, engines):
    peer.behave("429", "500", "ok")
    draft = engines(peer.url).draft(DraftJob(messages=MESSAGES, max_new_tokens=100))
    assert draft.text == REPLY
    assert [r["behaviour"] for r in peer.requests] == ["429", "500", "ok"]
    assert draft.settings["tries"] == 3


def test_a_server_that_stays_down_postpones_the_draft_with_a_plain_reason(engines):
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    engine = engines(url)  # a worker starts while its server is down: no error
    started = time.monotonic()
    with pytest.raises(DraftPostponed) as refused:
        engine.draft(DraftJob(messages=MESSAGES, max_new_tokens=20))
    assert str(refused.value) == SERVER_DOWN == "The model server does not answer."
    assert time.monotonic() - started < 15  # three tries with backoff, not forever


def test_a_server_that_comes_back_is_used_without_a_restart(engines):
    port = free_port()
    engine = engines(f"http://127.0.0.1:{port}/v1", RETRIES=0)
    with pytest.raises(DraftPostponed):
        engine.draft(DraftJob(messages=MESSAGES, max_new_tokens=20))
    assert engine.context_window == 4096  # nothing reported yet: the conservative default
    server = OpenAIPeer(port=port)
    try:
        engine._probed_at = 0  # the next draft asks for the model list again at once
        assert engine.draft(DraftJob(messages=MESSAGES, max_new_tokens=100)).text == REPLY
        assert engine.context_window == 1024
    finally:
        server.stop()


def test_a_stream_that_dies_midway_restarts_the_draft_whole(peer, engines):
    peer.behave("die", "ok")
    seen = []
    engine = engines(peer.url)
    draft = engine.draft(
        DraftJob(messages=MESSAGES, max_new_tokens=100, on_text=lambda t: (seen.append(t), time.sleep(0.05)))
    )
    assert draft.text == REPLY  # the second stream, whole: nothing of the first is glued on
    assert draft.settings["restarts"] == 1
    assert seen[-1] == REPLY


def test_a_first_token_that_never_comes_is_a_timeout_then_a_retry(peer, engines):
    peer.behave("silent", "ok")
    started = time.monotonic()
    draft = engines(peer.url, FIRST_TOKEN_TIMEOUT=1).draft(DraftJob(messages=MESSAGES, max_new_tokens=100))
    assert draft.text == REPLY
    assert 1 <= time.monotonic() - started < 10


def test_a_server_that_never_sends_a_first_token_postpones(peer, engines):
    peer.behave("silent")
    with pytest.raises(DraftPostponed) as refused:
        engines(peer.url, FIRST_TOKEN_TIMEOUT=0.5, RETRIES=1).draft(DraftJob(messages=MESSAGES, max_new_tokens=9))
    assert str(refused.value) == SERVER_DOWN


def test_an_event_that_is_not_json_is_a_broken_answer(peer, engines):
    peer.behave("not_json")
    with pytest.raises(DraftPostponed) as refused:
        engines(peer.url, RETRIES=1).draft(DraftJob(messages=MESSAGES, max_new_tokens=20))
    assert str(refused.value) == SERVER_UNREADABLE
    peer.behave("not_json", "ok")
    assert engines(peer.url, RETRIES=1).draft(DraftJob(messages=MESSAGES, max_new_tokens=100)).text == REPLY


def test_an_unknown_model_name_says_so(peer, engines, caplog):
    with caplog.at_level("ERROR"):
        engine = engines(peer.url, MODEL="mistral-small", RETRIES=0)
    assert "does not offer the model 'mistral-small'" in caplog.text and MODEL in caplog.text
    with pytest.raises(DraftPostponed) as refused:
        engine.draft(DraftJob(messages=MESSAGES, max_new_tokens=20))
    assert str(refused.value) == SERVER_NO_MODEL


def test_a_server_without_logprobs_is_asked_again_without_them(peer, engines):
    peer.behave("no_logprobs")
    draft = engines(peer.url).draft(DraftJob(messages=MESSAGES, max_new_tokens=100))
    assert draft.text == REPLY and draft.mean_token_prob is None
    assert [bool(r["body"].get("logprobs")) for r in peer.requests] == [True, False]


def test_should_stop_closes_the_stream_at_once(peer, engines):
    peer.behave("slow")
    stop = threading.Event()
    engine = engines(peer.url)
    threading.Timer(0.7, stop.set).start()
    draft = engine.draft(DraftJob(messages=MESSAGES, max_new_tokens=100, should_stop=stop.is_set))
    stopped_at = time.monotonic()
    assert draft.cancelled and len(draft.text.split()) < len(REPLY.split())
    deadline = time.monotonic() + 5
    while not peer.disconnects and time.monotonic() < deadline:
        time.sleep(0.05)
    assert peer.disconnects, "the server saw the connection close"
    assert peer.disconnects[0] - stopped_at < 1.0  # its next write failed: the slot is free


def test_concurrent_drafts_keep_to_the_configured_concurrency(peer, engines):
    peer.behave("slow")
    engine = engines(peer.url, MAX_BATCH=2)
    drafts = []
    threads = [
        threading.Thread(target=lambda: drafts.append(engine.draft(DraftJob(messages=MESSAGES, max_new_tokens=4))))
        for _ in range(5)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(drafts) == 5 and all(d.text == " ".join(REPLY.split()[:4]) for d in drafts)
    assert peer.max_active == 2


def test_prompts_are_counted_with_the_models_tokenizer_when_it_is_on_disk(peer, engines, tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {"[UNK]": 0, "<|im_start|>": 1, "hello": 2, "there": 3}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.add_special_tokens(["<|im_start|>"])
    tokenizer.save(str(tmp_path / "tokenizer.json"))
    messages = [{"role": "user", "content": "hello there hello"}]
    # Without a chat template: the contents counted exactly, the template's part estimated.
    without_template = engines(peer.url, TOKENIZER=str(tmp_path)).count_tokens(messages)
    assert without_template == 3 + 8 + 8 + 64
    # With one (as tokenizer_config.json holds it): exactly what the server counts.
    template = "{% for m in messages %}<|im_start|>{{ m['content'] }}\n{% endfor %}"
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"chat_template": template}))
    assert engines(peer.url, TOKENIZER=str(tmp_path)).count_tokens(messages) == 4
    # No tokenizer at all: an estimate from above.
    estimated = engines(peer.url).count_tokens(MESSAGES)
    assert estimated >= sum(len(m["content"]) for m in MESSAGES) / 3 + 16


def test_a_worker_in_this_mode_never_imports_torch(peer):
    """The worker's start-up and a draft, in a process of their own."""
    models = json.dumps([{"key": "server", "label": "Server", "backend": "openai", "url": peer.url, "model": MODEL}])
    script = """
import sys, django
django.setup()
from inference import tasks, worker
from inference.engine import DraftJob, load_engine
worker.load_model_before_taking_tasks()
tasks.start_drafting_helpers()
draft = load_engine("server").draft(DraftJob(messages=[{"role": "user", "content": "Hi"}], max_new_tokens=50))
assert draft.text, draft
heavy = sorted(m for m in ("torch", "transformers", "sentence_transformers") if m in sys.modules)
print("HEAVY", heavy)
"""
    env = {
        **__import__("os").environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "TUTOR_MODELS": models,
        "TUTOR_WORKER_MODEL": "server",
    }
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "HEAVY []" in result.stdout, result.stdout + result.stderr[-2000:]
