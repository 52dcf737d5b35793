"""A live class of students and their reviewers, through the real system.

N simulated students ask at random (exponential gaps) over their own WebSockets, each
question in a new conversation, with a question set of realistic near-duplicates; a real
Celery worker drafts (the stub engine of fixed speed) and groups alike questions with the
real sentence model; one or more simulated reviewers work the live review queue over
their socket and HTTP like the page does: claim the next draft, read it at a set number of
words a minute, edit a set share of drafts, approve.

Measured per question: the student's wait (question sent -> approved answer on their
socket), the first wait estimate the chat showed them, whether it was grouped. A spy on
every student socket counts any text that was not approved for that student
(unapproved_seen, must be 0).

Time is compressed by --scale (default 5): students, reviewers and the stub engine all run
that much faster, and every figure is reported in simulated seconds (real x scale). The
server's own overheads (database, broker, sockets) are not compressed, so they weigh
`scale` times more than in a real class.

    python bench/classroom.py                                  # 30 students, a question every ~5 min each, 1 reviewer
    python bench/classroom.py --interval 180 --reviewers 2     # a question every ~3 min each, 2 reviewers

Runs against its own SQLite database in var/bench-classroom/ and its own Redis database,
channel prefix and queue. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import random
import secrets
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
VAR = ROOT / "var" / "bench-classroom"

from bench.classroom_questions import DISTRESSED, ONE_OFFS, TOPICS  # noqa: E402
from tests.processes import PrivateRedis, Proc, start_server, start_worker  # noqa: E402
from tutor.measures import percentile  # noqa: E402

PASSWORD = "bench-pass-2026"


def log(message: str) -> None:
    print(message, flush=True)


# --- Services: Redis, the database, the server and the worker --------------------------


def redis_answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except Exception:  # noqa: BLE001 (any failure means "no Redis there")
        return False


def setup_django(redis_url: str) -> None:
    VAR.mkdir(parents=True, exist_ok=True)
    for leftover in VAR.glob("tutor.sqlite3*"):
        leftover.unlink()
    os.environ.pop("DATABASE_URL", None)  # its own SQLite database in VAR
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "tutor.settings",
            "TUTOR_VAR_DIR": str(VAR),
            "REDIS_URL": redis_url,
            "CHANNELS_PREFIX": "bench-classroom",
            "CELERY_QUEUE": "bench-classroom",
            "PYTHONUNBUFFERED": "1",
        }
    )
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from tutor.celery import app

    app.control.purge()


def seed(students: int, reviewers: int):
    """A school, one class, its students, a teacher and teaching assistants (reviewer role)."""
    from django.conf import settings
    from django.test import Client

    from classrooms.models import Classroom, Membership, School, User
    from classrooms.services import safeguarding_defaults_approve

    school = School.objects.create(name="Bench school")
    classroom = Classroom.objects.create(school=school, name="Maths 4e B", subject="Mathematics")
    lead = User.objects.create_user(username="cpe", password=PASSWORD, school=school, first_name="CPE")
    safeguarding_defaults_approve(actor=None, school=school, contacts=[lead])  # students may chat

    def person(username: str, role: str, first_name: str) -> dict:
        user = User.objects.create_user(username=username, password=PASSWORD, school=school, first_name=first_name)
        Membership.objects.create(classroom=classroom, user=user, role=role)
        client = Client()
        client.force_login(user)
        cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
        return {"id": user.pk, "name": str(user), "cookie": cookie}

    people = [person(f"student{n:02d}", Membership.Role.STUDENT, f"Student {n:02d}") for n in range(students)]
    staff = [person("teacher", Membership.Role.TEACHER, "Teacher")]
    staff += [person(f"assistant{n}", Membership.Role.REVIEWER, f"Assistant {n}") for n in range(1, reviewers)]
    return classroom, people, staff


# --- Clients: what the browser's scripts do ---------------------------------------------


class Browser:
    """Plain HTTP as a signed-in person, with a CSRF token of its own (cookie + header)."""

    def __init__(self, port: int, cookie: str):
        self.port, self.cookie, self.csrf = port, cookie, secrets.token_hex(16)

    def _request(self, method: str, path: str, fields: dict | None) -> tuple[int, dict, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {
            "Cookie": f"{self.cookie}; csrftoken={self.csrf}",
            "Accept": "application/json",
            "Host": f"127.0.0.1:{self.port}",
        }
        body = None
        if method == "POST":
            headers.update({"X-CSRFToken": self.csrf, "Content-Type": "application/x-www-form-urlencoded"})
            body = urlencode(fields or {})
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    async def post(self, path: str, fields: dict | None = None) -> tuple[int, dict, bytes]:
        return await asyncio.to_thread(self._request, "POST", path, fields)


def socket_headers(port: int, cookie: str) -> dict:
    return {"Cookie": cookie, "Origin": f"http://127.0.0.1:{port}"}


class Clock:
    """Simulated time: real time x scale since the start."""

    def __init__(self, scale: float):
        self.scale = scale
        self.started = time.monotonic()

    def now(self) -> float:
        return (time.monotonic() - self.started) * self.scale

    async def sleep(self, simulated_seconds: float) -> None:
        await asyncio.sleep(max(0.0, simulated_seconds) / self.scale)


class QuestionPicker:
    """What a class asks: mostly about the exercise of the moment (which changes every few
    minutes), some about other topics, some one-offs, rarely a student in distress."""

    def __init__(self, rng: random.Random, clock: Clock, lesson_minutes: float = 6.0):
        self.rng, self.clock = rng, clock
        self.topics = list(TOPICS)
        self.order = self.topics[:]
        rng.shuffle(self.order)
        self.lesson_seconds = lesson_minutes * 60
        self.distressed_left = list(DISTRESSED)

    def pick(self) -> tuple[str, str]:
        part = int(self.clock.now() // self.lesson_seconds)
        current = [self.order[(2 * part) % len(self.order)], self.order[(2 * part + 1) % len(self.order)]]
        roll = self.rng.random()
        if roll < 0.01 and self.distressed_left:
            return "distressed", self.distressed_left.pop()
        if roll < 0.50:
            topic = self.rng.choice(current)
        elif roll < 0.70:
            topic = self.rng.choice(self.topics)
        else:
            return "one-off", self.rng.choice(ONE_OFFS)
        return topic, self.rng.choice(TOPICS[topic])


class Record:
    def __init__(self, student: dict, text: str, topic: str):
        self.student, self.text, self.topic = student, text, topic
        self.reply_id: int | None = None
        self.asked_at = 0.0  # simulated
        self.answered_at: float | None = None
        self.estimate: float | None = None  # simulated seconds, the first the chat showed
        self.refused = ""
        self.frames: list[tuple[float, str]] = []  # (epoch time received, raw frame)


async def student_loop(
    student: dict,
    args,
    port: int,
    classroom_id: int,
    clock: Clock,
    picker: QuestionPicker,
    rng: random.Random,
    records: list[Record],
    stop_at: float,
):
    browser = Browser(port, student["cookie"])
    await clock.sleep(min(rng.expovariate(1 / args.interval), stop_at - clock.now()))
    while clock.now() < stop_at:
        topic, text = picker.pick()
        record = Record(student, text, topic)
        records.append(record)
        status, headers, _ = await browser.post(f"/classes/{classroom_id}/conversations/new/")
        if status != 302:
            record.refused = f"new conversation: HTTP {status}"
        else:
            conversation_id = int(headers["location"].rstrip("/").rsplit("/", 1)[1])
            await ask_and_wait(record, conversation_id, port, clock, args)
        await clock.sleep(min(rng.expovariate(1 / args.interval), stop_at - clock.now()))


async def ask_and_wait(record: Record, conversation_id: int, port: int, clock: Clock, args) -> None:
    from websockets.asyncio.client import connect

    async with connect(
        f"ws://127.0.0.1:{port}/ws/chat/{conversation_id}/",
        additional_headers=socket_headers(port, record.student["cookie"]),
        open_timeout=20,
        max_size=2**22,
    ) as ws:
        record.asked_at = clock.now()
        await ws.send(json.dumps({"type": "ask", "text": record.text, "client_id": secrets.token_hex(8)}))
        give_up = record.asked_at + args.give_up
        while record.answered_at is None and clock.now() < give_up:
            try:
                raw = await asyncio.wait_for(ws.recv(), timeout=max(0.1, (give_up - clock.now()) / clock.scale))
            except TimeoutError:
                break
            record.frames.append((time.time(), raw))
            frame = json.loads(raw)
            if frame.get("type") == "error":
                record.refused = frame.get("code", "error")
                return
            for message in frame.get("messages", []):
                if message["sender"] == "tutor" and record.reply_id is None:
                    record.reply_id = message["id"]
                if message["sender"] == "tutor" and message["state"] in ("answered", "declined"):
                    record.answered_at = clock.now()
            for wait in frame.get("wait", []):
                if record.estimate is None and wait["reply_id"] == record.reply_id:
                    record.estimate = wait["seconds"] * clock.scale


class Reviewer:
    """Works the live queue like the review page: the next draft in the queue's order
    (review_priority: safety tier, wrong maths, then the oldest), claims it, reads it,
    sometimes edits it, approves it."""

    def __init__(self, person: dict, port: int, clock: Clock, args, rng: random.Random, stop):
        self.person, self.port, self.clock, self.args, self.rng, self.stop = person, port, clock, args, rng, stop
        self.browser = Browser(port, person["cookie"])
        self.items: dict[int, dict] = {}
        self.changed = asyncio.Event()
        self.drafts: set[str] = set()  # every draft text seen, for the spy
        self.decisions: list[dict] = []
        self.conflicts = 0
        self.busy_seconds = 0.0

    async def run(self) -> None:
        from websockets.asyncio.client import connect

        async with connect(
            f"ws://127.0.0.1:{self.port}/ws/review/",
            additional_headers=socket_headers(self.port, self.person["cookie"]),
            open_timeout=20,
            max_size=2**24,
        ) as ws:
            await ws.send(json.dumps({"type": "sync"}))
            listener = asyncio.create_task(self.listen(ws))
            try:
                await self.work()
            finally:
                listener.cancel()

    async def listen(self, ws) -> None:
        async for raw in ws:
            frame = json.loads(raw)
            if frame["type"] == "queue":
                for reply in frame["replies"]:
                    self.items[reply["id"]] = reply
            elif frame["type"] == "reply":
                self.items[frame["reply"]["id"]] = frame["reply"]
            elif frame["type"] == "progress":
                continue
            for reply in [frame["reply"]] if frame["type"] == "reply" else frame.get("replies", []):
                if reply.get("draft"):
                    self.drafts.add(reply["draft"])
            self.changed.set()

    def next_draft(self) -> dict | None:
        ready = [
            r
            for r in self.items.values()
            if r["status"] == "awaiting_review" and (not r["claimed_by"] or r["claimed_by_me"])
        ]
        ready.sort(key=lambda r: r["priority"])  # the server's review_priority, as review.js orders cards
        return ready[0] if ready else None

    async def work(self) -> None:
        while not self.stop.is_set():
            reply = self.next_draft()
            if reply is None:
                self.changed.clear()
                try:
                    await asyncio.wait_for(self.changed.wait(), timeout=0.5)
                except TimeoutError:
                    pass
                continue
            status, _, body = await self.browser.post(f"/review/{reply['id']}/claim/")
            if status != 200:
                self.conflicts += 1
                self.items[reply["id"]] = {**reply, "status": "taken"}  # the socket tells us what it became
                continue
            reply = json.loads(body)["reply"]
            started = self.clock.now()
            # Read the question(s) and the draft at the set pace; a group's other questions too.
            words = len(reply["question"].split()) + reply["words"]
            for member in (reply["group"] or {}).get("members", [])[1:]:
                words += len(member["question"].split())
            seconds = words / self.args.wpm * 60 + self.args.decide_seconds
            edit = self.rng.random() < self.args.edit_share
            if edit:
                seconds += self.args.edit_words / self.args.type_wpm * 60
            await self.clock.sleep(seconds)
            fields = {"text": reply["draft"] + " Show me your working first."} if edit else {}
            status, _, body = await self.browser.post(f"/review/{reply['id']}/approve/", fields)
            self.busy_seconds += self.clock.now() - started
            if status == 200:
                self.decisions.append(
                    {
                        "reply_id": reply["id"],
                        "edited": edit,
                        "group": (reply["group"] or {}).get("size", 1),
                        "words": words,
                    }
                )
                self.items[reply["id"]] = json.loads(body)["reply"]
            else:
                self.conflicts += 1


# --- The spy and the figures --------------------------------------------------------------


def spy(records: list[Record], reviewer_drafts: set[str]) -> tuple[int, list[str]]:
    """Count every place a student's socket showed text no teacher approved for them:
    a tutor message whose text is not its reply's final text, or arrived before the
    decision, and any draft text (not approved for this student) anywhere in a frame."""
    from tutor.models import Message

    replies = {m.pk: m for m in Message.objects.filter(sender="tutor").select_related("conversation")}
    problems: list[str] = []
    approved_for: dict[int, list[str]] = {}
    for m in replies.values():
        if m.final_text:
            approved_for.setdefault(m.conversation.student_id, []).append(m.final_text)
    for record in records:
        # A draft is secret from this student unless a text approved for them contains it
        # (a reviewer's edit may keep the draft and add to it).
        mine = approved_for.get(record.student["id"], [])
        secrets_here = [d for d in reviewer_drafts if len(d.split()) >= 4 and not any(d in t for t in mine)]
        for received, raw in record.frames:
            frame = json.loads(raw)
            if frame.get("type") not in ("messages", "wait", "error"):
                problems.append(f"a {frame.get('type')!r} frame reached a student")
            for message in frame.get("messages", []):
                if message["sender"] != "tutor" or not message["text"]:
                    continue
                reply = replies.get(message["id"])
                if (
                    reply is None
                    or reply.status not in ("approved", "rejected")
                    or message["text"] != reply.final_text
                    or reply.reviewed_at.timestamp() > received + 0.05
                ):
                    problems.append(f"reply {message['id']}: text shown that was not approved for this student")
            for draft in secrets_here:
                if draft in raw:
                    problems.append(f"an unapproved draft reached {record.student['name']}")
    return len(problems), problems[:5]


def figures(args, records: list[Record], reviewers: list[Reviewer], clock: Clock) -> dict:
    from tutor.models import Message

    asked = [r for r in records if not r.refused and r.reply_id is not None]
    answered = [r for r in asked if r.answered_at is not None]
    # A question still unanswered when the run ends counts with the time it had waited.
    waits = [(r.answered_at if r.answered_at is not None else clock.now()) - r.asked_at for r in asked]
    estimated = [r for r in answered if r.estimate is not None]
    within = [r for r in estimated if 0.5 <= r.estimate / max(0.001, r.answered_at - r.asked_at) <= 2]
    grouped = set(
        Message.objects.filter(pk__in=[r.reply_id for r in asked], group__isnull=False).values_list("pk", flat=True)
    )
    decisions = [d for reviewer in reviewers for d in reviewer.decisions]
    return {
        "students": args.students,
        "reviewers": args.reviewers,
        "questions": len(asked),
        "grouped_share": round(len([r for r in asked if r.reply_id in grouped]) / len(asked), 3) if asked else 0,
        "wait_p50_s": percentile(waits, 0.5),
        "wait_p95_s": percentile(waits, 0.95),
        "estimate_within_2x_share": round(len(within) / len(estimated), 3) if estimated else 0,
        "unapproved_seen": None,  # filled in by the spy
        "answered": len(answered),
        "unanswered": len(asked) - len(answered),
        "refused": len([r for r in records if r.refused]),
        "reviews": len(decisions),
        "edited": len([d for d in decisions if d["edited"]]),
        "words_read_mean": round(sum(d["words"] for d in decisions) / len(decisions), 1) if decisions else 0,
        "reviewer_busy_share": round(sum(r.busy_seconds for r in reviewers) / (clock.now() * len(reviewers)), 3),
        "claim_conflicts": sum(r.conflicts for r in reviewers),
        "interval_s": args.interval,
        "wpm": args.wpm,
        "edit_share": args.edit_share,
        "simulated_minutes": args.minutes,
        "time_scale": args.scale,
    }


async def run(args, port: int, classroom, people: list[dict], staff: list[dict]) -> dict:
    rng = random.Random(args.seed)
    clock = Clock(args.scale)
    picker = QuestionPicker(random.Random(args.seed + 1), clock)
    stop_reviewing = asyncio.Event()
    reviewers = [
        Reviewer(person, port, clock, args, random.Random(args.seed + 10 + n), stop_reviewing)
        for n, person in enumerate(staff)
    ]
    reviewer_tasks = [asyncio.create_task(r.run()) for r in reviewers]
    records: list[Record] = []
    stop_at = args.minutes * 60
    students = [
        asyncio.create_task(
            student_loop(s, args, port, classroom.pk, clock, picker, random.Random(rng.random()), records, stop_at)
        )
        for s in people
    ]

    async def progress():
        while True:
            await clock.sleep(120)
            done = len([r for r in records if r.answered_at is not None])
            log(
                f"  t={clock.now() / 60:5.1f} min  asked {len(records)}  answered {done}  "
                f"reviews {sum(len(r.decisions) for r in reviewers)}"
            )

    reporter = asyncio.create_task(progress())
    await asyncio.gather(*students)
    reporter.cancel()
    stop_reviewing.set()
    for task in reviewer_tasks:
        task.cancel()
    await asyncio.gather(*reviewer_tasks, return_exceptions=True)
    from asgiref.sync import sync_to_async

    result = await sync_to_async(figures)(args, records, reviewers, clock)
    with open(VAR / "questions.tsv", "w") as out:  # one line a question, for a closer look
        out.write("reply\ttopic\tasked_s\twait_s\testimate_s\trefused\ttext\n")
        for r in records:
            wait = "" if r.answered_at is None else f"{r.answered_at - r.asked_at:.1f}"
            estimate = "" if r.estimate is None else f"{r.estimate:.0f}"
            out.write(f"{r.reply_id}\t{r.topic}\t{r.asked_at:.1f}\t{wait}\t{estimate}\t{r.refused}\t{r.text}\n")
    drafts = set().union(*(r.drafts for r in reviewers))
    result["unapproved_seen"], examples = await sync_to_async(spy)(records, drafts)
    for example in examples:
        log(f"  SPY: {example}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--interval", type=float, default=300, help="mean seconds between a student's questions")
    parser.add_argument("--reviewers", type=int, default=1)
    parser.add_argument("--wpm", type=float, default=400, help="reviewers' reading speed, words a minute")
    parser.add_argument("--edit-share", type=float, default=0.15, help="share of drafts a reviewer edits")
    parser.add_argument("--edit-words", type=float, default=6, help="words typed in an edit")
    parser.add_argument("--type-wpm", type=float, default=40, help="reviewers' typing speed")
    parser.add_argument("--decide-seconds", type=float, default=1.5, help="a glance at the flags and a key press")
    parser.add_argument("--minutes", type=float, default=20, help="simulated minutes of questions")
    parser.add_argument("--give-up", type=float, default=900, help="simulated seconds a student waits at most")
    parser.add_argument("--scale", type=float, default=5, help="time compression: simulated seconds per real second")
    parser.add_argument("--seconds-per-token", type=float, default=0.05, help="the stub engine's speed (simulated)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    private_redis = None
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
    VAR.mkdir(parents=True, exist_ok=True)
    if not redis_answers(redis_url):
        private_redis = PrivateRedis(log_dir=VAR)
        redis_url = private_redis.url
    setup_django(redis_url)
    from django.conf import settings

    classroom, people, staff = seed(args.students, args.reviewers)
    env = dict(
        os.environ, TUTOR_MODEL_BACKEND="fake", TUTOR_FAKE_SECONDS_PER_TOKEN=str(args.seconds_per_token / args.scale)
    )
    procs: list[Proc] = []
    try:
        procs.append(start_worker("worker", env=env, log_dir=VAR))
        if settings.TUTOR_GROUP_SIMILARITY > 0:
            procs[-1].wait_for("similarity model", timeout=300)
        server, port = start_server("server", env=env, log_dir=VAR)
        procs.append(server)
        log(
            f"classroom bench: {args.students} students, a question every ~{args.interval:.0f} s each, "
            f"{args.reviewers} reviewer(s) at {args.wpm:.0f} words/min editing {args.edit_share:.0%}; "
            f"{args.minutes:.0f} simulated minutes at time scale x{args.scale:g} "
            f"(figures in simulated seconds); stub engine {args.seconds_per_token} s/token"
        )
        started = time.monotonic()
        result = asyncio.run(run(args, port, classroom, people, staff))
        log(
            f"ran {time.monotonic() - started:.0f} s real; wait p50 {result['wait_p50_s']} s, "
            f"p95 {result['wait_p95_s']} s; grouped {result['grouped_share']:.0%}; "
            f"estimates within 2x {result['estimate_within_2x_share']:.0%}; "
            f"reviewer busy {result['reviewer_busy_share']:.0%}"
        )
        if "Traceback" in (VAR / "worker.log").read_text(errors="replace"):
            log(f"  note: the worker logged a traceback (see {VAR / 'worker.log'})")
    finally:
        for proc in reversed(procs):
            proc.stop()
        if private_redis is not None:
            private_redis.stop()
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
