"""Metrics: off until a token is set, refused without it, and after one core loop every
family the operator needs is there, with the loop counted in it."""

from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from inference.engine import DraftJob, load_engine, reset_engine
from tests.tutor.helpers import ask, draft, socket
from tutor import metrics, services
from tutor.models import Message

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "metrics-token-for-tests-6d1f0c"
FAMILIES = {
    "tutor_drafts",
    "tutor_oldest_owed_draft_seconds",
    "tutor_draft_events",
    "tutor_reconciler_requeued",
    "tutor_ask_to_draft_seconds",
    "tutor_ask_to_approved_seconds",
    "tutor_review_seconds",
    "tutor_generation_tokens_per_second",
    "tutor_generation_first_token_seconds",
    "tutor_open_sockets",
    "tutor_safeguarding_alerts",
    "tutor_workers",
    "tutor_queue_depth",
}


def scrape(client, token=TOKEN) -> dict[str, dict[tuple, float]]:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    families = {}
    for family in text_string_to_metric_families(response.content.decode()):
        families[family.name] = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in family.samples}
    return families


def value(families, family: str, sample: str, **labels) -> float:
    return families.get(family, {}).get((sample, tuple(sorted(labels.items()))), 0.0)


def test_metrics_are_off_until_a_token_is_set(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer anything").status_code == 404


def test_metrics_refuse_anyone_without_the_token(client, settings, teacher, as_user):
    settings.METRICS_TOKEN = TOKEN
    for response in (
        client.get("/metrics"),
        client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong-token"),
        client.get("/metrics", HTTP_AUTHORIZATION=TOKEN),
        as_user(teacher).get("/metrics"),  # a signed-in teacher is not the scraper
    ):
        assert response.status_code == 401
        assert response["WWW-Authenticate"].startswith("Bearer")


async def test_one_core_loop_shows_in_every_family(client, settings, student, teacher, classroom):
    settings.METRICS_TOKEN = TOKEN
    before = await sync_to_async(scrape)(client)
    chat_reply = await sync_to_async(ask)(student, classroom, "What is 7 times 8?")
    chat = await socket(f"/ws/chat/{chat_reply.conversation_id}/", student)
    assert (await chat.connect())[0]
    during = await sync_to_async(scrape)(client)
    assert value(during, "tutor_open_sockets", "tutor_open_sockets", kind="chat") == (
        value(before, "tutor_open_sockets", "tutor_open_sockets", kind="chat") + 1
    )

    def the_loop():
        reset_engine()
        try:  # the engine as the worker holds it, measured (tokens per second, first token)
            load_engine({"BACKEND": "fake"}).draft(
                DraftJob(messages=[{"role": "user", "content": "7 x 8"}], max_new_tokens=20)
            )
        finally:
            reset_engine()
        reply = draft(chat_reply)
        services.reply_claim(reply=reply, reviewer=teacher)
        services.reply_approve(reply=reply, reviewer=teacher, text="What is 7 times 10, minus 7 times 2?")
        lost = ask(student, classroom, "A question the broker lost")
        Message.objects.filter(pk=lost.pk).update(queued_at=timezone.now() - timedelta(hours=1))
        services.requeue_stuck_drafts()
        metrics.safeguarding_alert("distress")

    await sync_to_async(the_loop)()
    after = await sync_to_async(scrape)(client)
    await chat.disconnect()
    closed = await sync_to_async(scrape)(client)

    assert FAMILIES <= set(after), FAMILIES - set(after)

    def grew(family, sample, by=1, **labels):
        assert value(after, family, sample, **labels) - value(before, family, sample, **labels) >= by, (
            family,
            sample,
            labels,
        )

    grew("tutor_draft_events", "tutor_draft_events_total", event="queued", by=2)
    grew("tutor_draft_events", "tutor_draft_events_total", event="started")
    grew("tutor_draft_events", "tutor_draft_events_total", event="drafted")
    grew("tutor_ask_to_draft_seconds", "tutor_ask_to_draft_seconds_count")
    grew("tutor_ask_to_approved_seconds", "tutor_ask_to_approved_seconds_count", decision="edited")
    grew("tutor_review_seconds", "tutor_review_seconds_count", decision="edited")
    grew("tutor_reconciler_requeued", "tutor_reconciler_requeued_total", reason="lost")
    grew("tutor_safeguarding_alerts", "tutor_safeguarding_alerts_total", kind="distress")
    speed = [k for k in after["tutor_generation_tokens_per_second"] if k[0].endswith("_count")]
    assert any(dict(k[1])["model"] == "local" for k in speed)  # the model key, as TUTOR_MODELS names it
    assert value(after, "tutor_drafts", "tutor_drafts", state="queued") >= 1  # the lost one, sent again
    assert value(after, "tutor_oldest_owed_draft_seconds", "tutor_oldest_owed_draft_seconds") >= 0
    assert value(closed, "tutor_open_sockets", "tutor_open_sockets", kind="chat") == value(
        before, "tutor_open_sockets", "tutor_open_sockets", kind="chat"
    )


def test_no_label_carries_a_name_or_a_text(client, settings, student, teacher, classroom):
    settings.METRICS_TOKEN = TOKEN
    reply = draft(ask(student, classroom, "METRICS-CANARY-e5 what is pi?"), text="METRICS-DRAFT-CANARY-e5")
    services.reply_approve(reply=reply, reviewer=teacher)
    text = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()
    assert "METRICS-CANARY-e5" not in text and "METRICS-DRAFT-CANARY-e5" not in text
    labels = {v for family in text_string_to_metric_families(text) for s in family.samples for v in s.labels.values()}
    assert not labels & {student.username, teacher.username, str(student.pk), str(reply.pk), classroom.name}
