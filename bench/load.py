"""Load: 500 students connected at once across two ASGI servers, 10 teachers approving
in bursts (50 approvals/s) through the *other* server, two drafting workers, one Redis.

Measures, for each approval, the time from the teacher's request to the frame on the
student's socket (p50/p95/p99), counts lost answers against the database, finds the
socket count at which p95 passes 50 ms, then restarts Redis under the connected sockets
and shows the clients reconnecting and catching up.

    python bench/load.py [--students 500] [--rate 50] [--quick]

Uses PostgreSQL at BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/tutor_bench)
when it answers, and its own private Redis. The drafting engine is the stub of fixed speed.
The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DB_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/tutor_bench")


POST_MS: list[float] = []  # how long the approval request itself took


def percentile(values, q):
    """p`q` in milliseconds, from the one percentile of the project (tutor.measures)."""
    from tutor.measures import percentile as nearest_rank

    return nearest_rank(values, q / 100, digits=2)


def setup_django(redis_url: str):
    os.environ.update(
        {
            "DATABASE_URL": DB_URL,
            "REDIS_URL": redis_url,
            "CHANNELS_PREFIX": "bench",
            "CELERY_QUEUE": "bench",
            "DJANGO_SETTINGS_MODULE": "tutor.settings",
            "TUTOR_VAR_DIR": str(ROOT / "var" / "bench"),
        }
    )
    import django

    django.setup()
    import psycopg
    from django.core.management import call_command

    admin_url = DB_URL.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS tutor_bench WITH (FORCE)")
        conn.execute("CREATE DATABASE tutor_bench")
    call_command("migrate", verbosity=0)
    from django.conf import settings

    # The bench process asks on behalf of hundreds of students: no per-student limits here.
    settings.TUTOR_MESSAGES_PER_MINUTE = settings.TUTOR_MAX_PENDING_PER_STUDENT = 10**6
    settings.TUTOR_MAX_PENDING_PER_CLASS = 10**6


def seed(students: int, classes: int):
    """A school; `classes` classes, each with a teacher; students spread over them.
    Returns (students [(conversation_id, cookie)], teachers [(cookie, classroom_id)])."""
    from django.contrib.sessions.backends.db import SessionStore

    from classrooms.models import Classroom, Membership, School, User
    from tutor.models import Conversation

    def cookie_for(user):
        session = SessionStore()
        session["_auth_user_id"] = str(user.pk)
        session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
        session["_auth_user_hash"] = user.get_session_auth_hash()
        session.create()
        return f"sessionid={session.session_key}"

    school = School.objects.create(name="Bench school")
    rooms = [Classroom.objects.create(school=school, name=f"class {i}") for i in range(classes)]
    teachers = []
    for i, room in enumerate(rooms):
        teacher = User.objects.create(username=f"teacher{i}", school=school)
        Membership.objects.create(classroom=room, user=teacher, role="teacher")
        teachers.append((cookie_for(teacher), room.id))
    people = []
    for i in range(students):
        room = rooms[i % classes]
        student = User.objects.create(username=f"student{i}", school=school)
        Membership.objects.create(classroom=room, user=student, role="student")
        conversation = Conversation.objects.create(classroom=room, student=student)
        people.append((conversation.id, cookie_for(student), room.id))
    return people, teachers


def pending_replies(people):
    """Each of these students asks a question; the workers draft them all (stub engine).
    Returns [(reply id, conversation id, classroom id)] once every draft awaits review."""
    from tutor import services
    from tutor.models import Conversation, Message

    replies = []
    for i, (conversation_id, _, room_id) in enumerate(people):
        conversation = Conversation.objects.get(pk=conversation_id)
        question, _ = services.question_ask(conversation=conversation, text=f"bench question {i}")
        replies.append((question.reply.id, conversation_id, room_id))
    ids = [r[0] for r in replies]
    deadline = time.monotonic() + 120
    while Message.objects.filter(pk__in=ids, status="awaiting_review").count() < len(ids):
        if time.monotonic() > deadline:
            raise RuntimeError("the workers did not draft the bench questions in 120 s")
        time.sleep(0.2)
    return replies


class Student:
    def __init__(self, port, conversation_id, cookie):
        self.url = f"ws://127.0.0.1:{port}/ws/chat/{conversation_id}/"
        self.headers = {"Cookie": cookie, "Origin": f"http://127.0.0.1:{port}"}
        self.version = 0
        self.answered: dict[int, float] = {}  # reply id -> when the answer arrived
        self.reconnects = 0
        self.ready = asyncio.Event()

    async def run(self, stop: asyncio.Event):
        import websockets

        delay = 0.2
        while not stop.is_set():
            try:
                async with websockets.connect(
                    self.url, additional_headers=self.headers, open_timeout=20, max_queue=None, compression=None
                ) as ws:
                    delay = 0.2
                    await ws.send(json.dumps({"type": "sync", "since": self.version}))
                    self.ready.set()
                    async for raw in ws:
                        now = time.time()  # wall clock: compared with the server's reviewed_at
                        frame = json.loads(raw)
                        if frame.get("type") != "messages":
                            continue
                        for m in frame["messages"]:
                            if m["state"] == "answered" and m["id"] not in self.answered:
                                self.answered[m["id"]] = now
                        self.version = max(self.version, frame.get("version", 0))
                        if stop.is_set():
                            return
            except Exception:
                pass
            if stop.is_set():
                return
            self.ready.clear()
            self.reconnects += 1
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 5)


async def post(port: int, path: str, cookie: str, fields: str) -> int:
    token = secrets.token_hex(16)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    body = fields.encode()
    writer.write(
        (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nCookie: {cookie}; csrftoken={token}\r\n"
            f"X-CSRFToken: {token}\r\nOrigin: http://127.0.0.1:{port}\r\nAccept: application/json\r\n"
            f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n"
            f"Connection: close\r\n\r\n"
        ).encode()
        + body
    )
    await writer.drain()
    status_line = await reader.readline()
    await reader.read()
    writer.close()
    return int(status_line.split()[1])


async def approve_burst(replies, teacher_cookie, server_port_for, rate: float, sent_at: dict):
    """Approve at `rate` per second overall, in bursts of 10 each 10/rate seconds."""
    burst = 10
    for start in range(0, len(replies), burst):
        tick = time.perf_counter()
        chunk = replies[start : start + burst]

        async def one(reply):
            reply_id, _, room_id = reply
            sent_at[reply_id] = time.time()
            status = await post(
                server_port_for(reply), f"/review/{reply_id}/approve/", teacher_cookie[room_id], "text=approved"
            )
            POST_MS.append((time.time() - sent_at[reply_id]) * 1000)
            if status != 200:
                sent_at.pop(reply_id, None)
                print(f"approve {reply_id} -> HTTP {status}", file=sys.stderr)

        await asyncio.gather(*(one(r) for r in chunk))
        await asyncio.sleep(max(0.0, burst / rate - (time.perf_counter() - tick)))


async def measure(students, replies, teacher_cookie, other_port_of, rate, settle=5.0):
    sent_at: dict[int, float] = {}
    by_conversation = {s.conversation_id: s for s in students}
    await approve_burst(replies, teacher_cookie, other_port_of, rate, sent_at)
    deadline = time.perf_counter() + settle
    latencies, from_click, lost = [], [], []
    while time.perf_counter() < deadline:
        if all(rid in by_conversation[cid].answered for rid, cid, _ in replies if rid in sent_at):
            break
        await asyncio.sleep(0.05)
    approved_at = await asyncio.to_thread(reviewed_at, [r[0] for r in replies])
    for reply_id, conversation_id, _ in replies:
        student = by_conversation[conversation_id]
        if reply_id in student.answered and reply_id in sent_at:
            latencies.append((student.answered[reply_id] - approved_at[reply_id]) * 1000)
            from_click.append((student.answered[reply_id] - sent_at[reply_id]) * 1000)
        elif reply_id in sent_at:
            lost.append(reply_id)
    return latencies, from_click, lost


def reviewed_at(reply_ids):
    """When each approval was made, as the server recorded it (the database is the truth)."""
    from django.db import close_old_connections

    from tutor.models import Message

    close_old_connections()
    return {
        pk: at.timestamp()
        for pk, at in Message.objects.filter(pk__in=reply_ids).values_list("id", "reviewed_at")
        if at is not None
    }


async def main_async(args, ports, people, teachers, redis):
    stop = asyncio.Event()
    teacher_cookie = {room: cookie for cookie, room in teachers}
    students = []
    tasks = []
    # A student connects to one server; their teacher approves through the other.
    server_of = {}
    results = {"steps": []}
    step_sizes = [n for n in (100, 200, 300, 400, 500, 750, 1000) if n <= args.students] or [args.students]
    connected = 0
    for size in step_sizes:
        for i in range(connected, size):
            conversation_id, cookie, room_id = people[i]
            port = ports[i % 2]
            server_of[conversation_id] = port
            student = Student(port, conversation_id, cookie)
            student.conversation_id = conversation_id
            students.append(student)
            tasks.append(asyncio.create_task(student.run(stop)))
            if i % 50 == 49:
                await asyncio.sleep(0.2)
        connected = size
        await asyncio.wait_for(asyncio.gather(*(s.ready.wait() for s in students)), 120)
        await asyncio.sleep(1)
        count = min(args.approvals, size)
        chosen = random.sample(people[:size], count)
        replies = await asyncio.to_thread(pending_replies_for, chosen)
        await asyncio.sleep(1.0)  # let the "asked" nudges pass
        latencies, from_click, lost = await measure(
            students,
            replies,
            teacher_cookie,
            lambda r: ports[1] if server_of[r[1]] == ports[0] else ports[0],
            args.rate,
        )
        step = {
            "sockets": size,
            "approvals": len(replies),
            "lost": len(lost),
            "p50_ms": percentile(latencies, 50),
            "p95_ms": percentile(latencies, 95),
            "p99_ms": percentile(latencies, 99),
            "from_click_p50_ms": percentile(from_click, 50),
            "from_click_p95_ms": percentile(from_click, 95),
        }
        results["steps"].append(step)
        print(
            f"{size:5d} sockets: {len(replies)} approvals at {args.rate}/s, lost {len(lost)}, "
            f"approval -> student socket p50 {step['p50_ms']} ms, p95 {step['p95_ms']} ms, p99 {step['p99_ms']} ms; "
            f"from the teacher's click p50 {step['from_click_p50_ms']} ms, p95 {step['from_click_p95_ms']} ms "
            f"(the approval request itself p95 {percentile(POST_MS, 95)} ms)",
            flush=True,
        )
        step["approve_request_p95_ms"] = percentile(POST_MS, 95)
        POST_MS.clear()

    # Redis restarts under everyone: Channels closes every socket; clients reconnect and catch up.
    before = sum(s.reconnects for s in students)
    redis.stop()
    await asyncio.sleep(1.0)
    redis.start()
    t_restart = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(s.ready.wait() for s in students)), 120)
    reconnected_s = time.perf_counter() - t_restart
    reconnects = sum(s.reconnects for s in students) - before
    chosen = random.sample(people[: len(students)], min(args.approvals, len(students)))
    replies = await asyncio.to_thread(pending_replies_for, chosen)
    await asyncio.sleep(1.0)
    latencies, _, lost = await measure(
        students,
        replies,
        teacher_cookie,
        lambda r: ports[1] if server_of[r[1]] == ports[0] else ports[0],
        args.rate,
        settle=15,
    )
    results["redis_restart"] = {
        "reconnects": reconnects,
        "all_reconnected_s": round(reconnected_s, 2),
        "approvals_after": len(replies),
        "lost_after": len(lost),
        "p95_ms_after": percentile(latencies, 95),
    }
    print(
        f"redis restart: {reconnects} reconnects, all sockets back in {reconnected_s:.1f} s; then "
        f"{len(replies)} approvals, lost {len(lost)}",
        flush=True,
    )
    stop.set()
    for task in tasks:
        task.cancel()
    return results


def pending_replies_for(chosen):
    from django.db import close_old_connections

    close_old_connections()
    return pending_replies(chosen)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=500)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--rate", type=float, default=50.0, help="approvals per second, in bursts of 10")
    parser.add_argument("--approvals", type=int, default=200, help="approvals measured per step")
    parser.add_argument("--quick", action="store_true", help="100 students, 50 approvals a step")
    args = parser.parse_args()
    if args.quick:
        args.students, args.approvals = 100, 50

    from tests.processes import PrivateRedis, Proc, free_port

    redis = PrivateRedis()
    setup_django(redis.url)
    people, teachers = seed(args.students, args.classes)
    env = dict(os.environ, TUTOR_MODEL_BACKEND="fake", TUTOR_FAKE_SECONDS_PER_TOKEN="0.005", PYTHONUNBUFFERED="1")
    procs = []
    ports = [free_port(), free_port()]
    try:
        for n, port in enumerate(ports):
            procs.append(
                Proc(
                    f"bench-server-{n}",
                    [
                        sys.executable,
                        "-m",
                        "uvicorn",
                        "tutor.asgi:application",
                        "--port",
                        str(port),
                        "--ws-per-message-deflate",
                        "false",
                        "--no-access-log",
                        "--log-level",
                        "warning",
                    ],
                    env,
                    ready="",
                    timeout=5,
                )
            )
        for n in range(2):
            procs.append(
                Proc(
                    f"bench-worker-{n}",
                    [sys.executable, "manage.py", "worker", "--loglevel=WARNING"],
                    env,
                    ready="ready",
                    timeout=60,
                )
            )
        time.sleep(2)
        started = time.perf_counter()
        results = asyncio.run(main_async(args, ports, people, teachers, redis))
    finally:
        for proc in procs:
            proc.stop()
        redis.stop()
    steps = results["steps"]
    over = [s["sockets"] for s in steps if s["p95_ms"] is not None and s["p95_ms"] > 50]
    at_500 = next((s for s in steps if s["sockets"] == 500), steps[-1])
    summary = {
        "students": args.students,
        "servers": 2,
        "workers": 2,
        "approval_rate_per_s": args.rate,
        "p50_ms": at_500["p50_ms"],
        "p95_ms": at_500["p95_ms"],
        "p99_ms": at_500["p99_ms"],
        "lost": sum(s["lost"] for s in steps) + results["redis_restart"]["lost_after"],
        "p95_passes_50ms_at_sockets": over[0] if over else None,
        "redis_restart": results["redis_restart"],
        "steps": steps,
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(
        "measured: the approval's commit (reviewed_at, server clock) -> 'answered' frame on the student's socket "
        "(same machine, wall clock); 'from_click' adds the teacher's HTTP request through the other server; bursts "
        "of 10; 2 uvicorn + 2 workers (stub engine) + 1 Redis + PostgreSQL + this client, all on this 2-core machine"
    )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
