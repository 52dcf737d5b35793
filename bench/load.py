"""Load: a school's students connected at once across two ASGI servers, teachers
approving through the *other* server, two drafting workers, one Redis.

Measures, for each approval, the time from its commit to the frame on the student's
socket (p50/p95/p99), and from the teacher's click; counts lost answers against the
database. Reports what a school needs:

- 1,000 sockets at 10 approvals/s: p95 against the target of 50 ms;
- the highest approval rate at which p95 stays within 250 ms (rates tried in turn, then
  one step between the last that passed and the first that did not);
- then Redis restarts under the connected sockets, and the clients reconnect and catch up.

    python bench/load.py [--students 1000] [--quick]

The database is the one BENCH_DATABASE_URL names (default
postgres://postgres@127.0.0.1:5432/tutor_bench); it is dropped and created again, so its
name must contain "bench". When that variable is unset and no PostgreSQL answers, the
benchmark runs on SQLite (figures not comparable with PostgreSQL's, and it says so); when
it is set and its server does not answer, it stops with a message. It starts its own
private Redis. The drafting engine is the stub of fixed speed. Everything, this client
included, shares the machine's CPUs: the count it actually ran on and the load average
are printed. The last line is one JSON object.
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

DEFAULT_DB_URL = "postgres://postgres@127.0.0.1:5432/tutor_bench"
SCHOOL_SOCKETS, SCHOOL_RATE, SCHOOL_P95_MS = 1000, 10.0, 50.0
CEILING_P95_MS = 250.0


POST_MS: list[float] = []  # how long the approval request itself took


def percentile(values, q):
    """p`q` in milliseconds, from the one percentile of the project (tutor.measures)."""
    from tutor.measures import percentile as nearest_rank

    return nearest_rank(values, q / 100, digits=2)


def cpus_used() -> int:
    """The CPUs this process may run on (what a container or taskset allows)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def choose_database() -> tuple[str, str]:
    """(database URL, what it is). PostgreSQL at BENCH_DATABASE_URL; SQLite when that is
    unset and no PostgreSQL answers; a clear stop when it is set and nothing answers."""
    from urllib.parse import urlsplit, urlunsplit

    explicit = os.environ.get("BENCH_DATABASE_URL")
    url = explicit or DEFAULT_DB_URL
    parts = urlsplit(url)
    if parts.scheme.startswith("sqlite"):
        return fresh_sqlite(Path(parts.path)), "SQLite"
    name = parts.path.lstrip("/")
    if "bench" not in name:
        sys.exit(
            f"BENCH_DATABASE_URL names the database {name!r}; the benchmark drops and creates its database "
            "again, so its name must contain 'bench' (for example .../tutor_bench)."
        )
    import psycopg

    admin_url = urlunsplit(parts._replace(path="/postgres"))
    try:
        psycopg.connect(admin_url, connect_timeout=5).close()
    except psycopg.OperationalError as exc:
        if explicit:
            sys.exit(f"BENCH_DATABASE_URL: no PostgreSQL answers at {parts.hostname}:{parts.port or 5432} ({exc}).")
        path = ROOT / "var" / "bench" / "bench.sqlite3"
        fresh_sqlite(path)
        print(
            f"no PostgreSQL at {parts.hostname}:{parts.port or 5432}: running on SQLite ({path}); writers queue up "
            "there, so these figures are not comparable with PostgreSQL's. Set BENCH_DATABASE_URL to use a server.",
            flush=True,
        )
        return f"sqlite:///{path}", "SQLite (no PostgreSQL answered)"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return url, f"PostgreSQL {parts.hostname}:{parts.port or 5432}/{name}"


def fresh_sqlite(path: Path) -> str:
    """An empty SQLite database at `path` (and its journal files removed); its URL."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for leftover in path.parent.glob(path.name + "*"):
        leftover.unlink()
    return f"sqlite:///{path}"


def setup_django(redis_url: str, db_url: str):
    os.environ.update(
        {
            "DATABASE_URL": db_url,
            "REDIS_URL": redis_url,
            "CHANNELS_PREFIX": "bench",
            "CELERY_QUEUE": "bench",
            "DJANGO_SETTINGS_MODULE": "tutor.settings",
            "TUTOR_VAR_DIR": str(ROOT / "var" / "bench"),
        }
    )
    import django

    django.setup()
    from django.core.management import call_command

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

    from classrooms.services import safeguarding_defaults_approve

    school = School.objects.create(name="Bench school")
    safeguarding_defaults_approve(
        actor=None, school=school, contacts=[User.objects.create(username="cpe", school=school)]
    )  # students may chat
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


async def approve_at(replies, teacher_cookie, server_port_for, rate: float, sent_at: dict):
    """Approve at a steady `rate` per second: each approval is sent at its time, without
    waiting for the ones before it (a class's teachers do not take turns)."""
    start = time.perf_counter()

    async def one(i, reply):
        await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
        reply_id, _, room_id = reply
        sent_at[reply_id] = time.time()
        try:
            status = await post(
                server_port_for(reply), f"/review/{reply_id}/approve/", teacher_cookie[room_id], "text=approved"
            )
        except OSError as exc:
            status = f"{type(exc).__name__}"
        POST_MS.append((time.time() - sent_at[reply_id]) * 1000)
        if status != 200:
            sent_at.pop(reply_id, None)
            print(f"approve {reply_id} -> {status}", file=sys.stderr)

    await asyncio.gather(*(one(i, r) for i, r in enumerate(replies)))
    return time.perf_counter() - start


async def measure(students, replies, teacher_cookie, other_port_of, rate, settle=5.0):
    sent_at: dict[int, float] = {}
    by_conversation = {s.conversation_id: s for s in students}
    took = await approve_at(replies, teacher_cookie, other_port_of, rate, sent_at)
    deadline = time.perf_counter() + settle
    latencies, from_click, lost = [], [], []
    while time.perf_counter() < deadline:
        if all(rid in by_conversation[cid].answered for rid, cid, _ in replies if rid in sent_at):
            break
        await asyncio.sleep(0.05)
    approved_at = await asyncio.to_thread(reviewed_at, [r[0] for r in replies])
    for reply_id, conversation_id, _ in replies:
        student = by_conversation[conversation_id]
        if reply_id in student.answered and reply_id in sent_at and reply_id in approved_at:
            latencies.append((student.answered[reply_id] - approved_at[reply_id]) * 1000)
            from_click.append((student.answered[reply_id] - sent_at[reply_id]) * 1000)
        elif reply_id in sent_at:
            lost.append(reply_id)
    refused = len(replies) - len(sent_at)
    return latencies, from_click, lost, refused, len(replies) / took if took else None


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
    students, tasks = [], []
    # A student connects to one server; their teacher approves through the other.
    server_of = {}

    def other_port(reply):
        return ports[1] if server_of[reply[1]] == ports[0] else ports[0]

    # Students arrive a hundred at a time, each batch once the last is in (all at once,
    # a thousand handshakes time out and retry together, which no class does).
    connect_started = time.perf_counter()
    for i, (conversation_id, cookie, _room_id) in enumerate(people):
        port = ports[i % 2]
        server_of[conversation_id] = port
        student = Student(port, conversation_id, cookie)
        student.conversation_id = conversation_id
        students.append(student)
        tasks.append(asyncio.create_task(student.run(stop)))
        if i % 100 == 99 or i == len(people) - 1:
            await asyncio.wait_for(asyncio.gather(*(s.ready.wait() for s in students[-100:])), 180)
    connected_s = time.perf_counter() - connect_started
    print(f"{len(students)} sockets connected in {connected_s:.1f} s", flush=True)
    await asyncio.sleep(1)

    async def round_at(rate: float, approvals: int) -> dict:
        chosen = random.sample(people, min(approvals, len(people)))
        replies = await asyncio.to_thread(pending_replies_for, chosen)
        await asyncio.sleep(1.0)  # let the "asked" nudges pass
        latencies, from_click, lost, refused, achieved = await measure(
            students, replies, teacher_cookie, other_port, rate
        )
        step = {
            "sockets": len(students),
            "rate_per_s": rate,
            "achieved_rate_per_s": round(achieved, 1) if achieved else None,
            "approvals": len(replies),
            "refused": refused,
            "lost": len(lost),
            "p50_ms": percentile(latencies, 50),
            "p95_ms": percentile(latencies, 95),
            "p99_ms": percentile(latencies, 99),
            "from_click_p50_ms": percentile(from_click, 50),
            "from_click_p95_ms": percentile(from_click, 95),
            "approve_request_p95_ms": percentile(POST_MS, 95),
            "load_average": round(os.getloadavg()[0], 2),
        }
        POST_MS.clear()
        print(
            f"{step['sockets']:5d} sockets, {rate:g} approvals/s (sent at {step['achieved_rate_per_s']}/s): "
            f"{len(replies)} approvals, refused {refused}, lost {len(lost)}; commit -> student socket p50 "
            f"{step['p50_ms']} ms, p95 {step['p95_ms']} ms, p99 {step['p99_ms']} ms; from the click p95 "
            f"{step['from_click_p95_ms']} ms (the request itself p95 {step['approve_request_p95_ms']} ms); "
            f"load average {step['load_average']}",
            flush=True,
        )
        return step

    def passes(step, ceiling):
        return step["p95_ms"] is not None and step["p95_ms"] <= ceiling and not step["lost"] and not step["refused"]

    # Warm-up, not counted: each server's templates, imports and connections, and the
    # catch-up every newly connected socket asked for. Repeated until a round loses nothing
    # (answers later than 5 s count as lost), so that what follows is the steady state.
    for attempt in range(1, 7):
        print(f"warm-up {attempt} (not counted):", end=" ", flush=True)
        warm = await round_at(args.school_rate, 10)
        if not warm["lost"] and not warm["refused"]:
            break
    results = {"school": await round_at(args.school_rate, args.approvals), "rates": [], "warm_up_rounds": attempt}
    # The highest rate at which p95 stays within the ceiling: up the list, then one step between.
    best, first_fail = None, None
    for rate in args.rates:
        step = await round_at(rate, min(args.max_approvals, max(args.approvals, int(rate * args.seconds))))
        results["rates"].append(step)
        if not passes(step, CEILING_P95_MS):
            first_fail = rate
            break
        best = rate
    if best is not None and first_fail is not None and first_fail / best > 1.3:
        middle = round((best * first_fail) ** 0.5)
        step = await round_at(middle, min(args.max_approvals, max(args.approvals, int(middle * args.seconds))))
        results["rates"].append(step)
        if passes(step, CEILING_P95_MS):
            best = middle
    results["highest_rate_within_ceiling"] = best
    results["first_rate_over_ceiling"] = first_fail

    # Redis restarts under everyone: Channels closes every socket; clients reconnect and catch up.
    before = sum(s.reconnects for s in students)
    redis.stop()
    await asyncio.sleep(1.0)
    redis.start()
    t_restart = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(s.ready.wait() for s in students)), 180)
    reconnected_s = time.perf_counter() - t_restart
    reconnects = sum(s.reconnects for s in students) - before
    chosen = random.sample(people, min(args.approvals, len(students)))
    replies = await asyncio.to_thread(pending_replies_for, chosen)
    await asyncio.sleep(1.0)
    latencies, _, lost, refused, _ = await measure(
        students, replies, teacher_cookie, other_port, args.school_rate, settle=15
    )
    results["redis_restart"] = {
        "reconnects": reconnects,
        "all_reconnected_s": round(reconnected_s, 2),
        "approvals_after": len(replies),
        "lost_after": len(lost),
        "refused_after": refused,
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
    parser.add_argument("--students", type=int, default=SCHOOL_SOCKETS, help="sockets connected (one per student)")
    parser.add_argument("--classes", type=int, default=20)
    parser.add_argument("--school-rate", type=float, default=SCHOOL_RATE, help="approvals/s of the school figure")
    parser.add_argument(
        "--rates", default="25,50,100,200,400", help="approval rates tried in turn for the highest within 250 ms"
    )
    parser.add_argument("--approvals", type=int, default=100, help="approvals measured per round (at least)")
    parser.add_argument("--seconds", type=float, default=4.0, help="a round at a higher rate lasts about this long")
    parser.add_argument("--max-approvals", type=int, default=800)
    parser.add_argument("--quick", action="store_true", help="100 sockets, 30 approvals a round, rates 25,100")
    args = parser.parse_args()
    if args.quick:
        args.students, args.approvals, args.rates, args.max_approvals = 100, 30, "25,100", 100
    args.rates = [float(r) for r in args.rates.split(",") if r.strip()]
    args.students = max(args.students, args.approvals)

    from tests.processes import PrivateRedis, Proc, free_port

    cpus = cpus_used()
    load_before = os.getloadavg()
    db_url, database = choose_database()
    redis = PrivateRedis()
    setup_django(redis.url, db_url)
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
    school = results["school"]
    summary = {
        "database": database,
        "cpus": cpus,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "sockets": args.students,
        "servers": 2,
        "workers": 2,
        "school": {
            "sockets": school["sockets"],
            "approvals_per_s": args.school_rate,
            "p50_ms": school["p50_ms"],
            "p95_ms": school["p95_ms"],
            "p99_ms": school["p99_ms"],
            "p95_target_ms": SCHOOL_P95_MS,
            "meets_target": school["p95_ms"] is not None and school["p95_ms"] <= SCHOOL_P95_MS and not school["lost"],
        },
        "warm_up_rounds": results["warm_up_rounds"],
        "highest_rate_p95_within_250ms": results["highest_rate_within_ceiling"],
        "first_rate_p95_over_250ms": results["first_rate_over_ceiling"],
        "lost": school["lost"] + sum(s["lost"] for s in results["rates"]) + results["redis_restart"]["lost_after"],
        "redis_restart": results["redis_restart"],
        "rounds": [school] + results["rates"],
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(
        f"measured on {cpus} CPU(s) (load average {load_before[0]:.2f} before, {os.getloadavg()[0]:.2f} after), "
        f"{database}: the approval's commit (reviewed_at, server clock) -> 'answered' frame on the student's socket "
        "(same machine, wall clock); 'from the click' adds the teacher's HTTP request through the other server; "
        "approvals sent at a steady rate; 2 uvicorn + 2 workers (stub engine) + 1 Redis + the database + this "
        "client, all on these CPUs"
    )
    print(
        f"school: {school['sockets']} sockets at {args.school_rate:g} approvals/s: p95 {school['p95_ms']} ms "
        f"(target {SCHOOL_P95_MS:g} ms: {'met' if summary['school']['meets_target'] else 'NOT met'}); "
        f"highest rate with p95 <= {CEILING_P95_MS:g} ms: {summary['highest_rate_p95_within_250ms']} approvals/s"
    )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
