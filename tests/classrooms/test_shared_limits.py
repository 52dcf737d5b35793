"""Limits that must hold across web processes live in the shared Redis cache: wrong join
codes typed through one process count in every other. A per-process cache (Django's
default) let two processes take twice the guesses."""

import subprocess
import sys

import pytest
import redis
from django.conf import settings
from django.core.cache import cache

from classrooms import services
from tests.processes import ROOT, process_env

GUESS_IN_ANOTHER_PROCESS = """
import django
django.setup()
from classrooms import services
from classrooms.models import User
person = User.objects.get(pk={person_id})
for n in range(services.JOIN_REFUSALS_LIMIT):
    try:
        services.class_join(person=person, code=f"WRONG{{n}}", throttle_key=f"user.{{person.pk}}")
    except services.JoinRefused:
        pass
print("guessed")
"""


@pytest.mark.django_db(transaction=True)
def test_wrong_codes_typed_through_another_web_process_count_here(outsider, classroom):
    done = subprocess.run(
        [sys.executable, "-c", GUESS_IN_ANOTHER_PROCESS.format(person_id=outsider.pk)],
        cwd=ROOT,
        env=process_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and "guessed" in done.stdout, done.stderr[-2000:]
    with pytest.raises(services.JoinRefused, match="Too many wrong codes"):
        services.class_join(person=outsider, code=classroom.join_code, throttle_key=f"user.{outsider.pk}")
    assert not outsider.memberships.exists()


def test_clearing_the_cache_leaves_the_queue_and_the_sockets_alone():
    raw = redis.Redis.from_url(settings.REDIS_URL)
    other = f"{settings.CELERY_TASK_DEFAULT_QUEUE}-not-the-cache"
    raw.set(other, "queued work", ex=60)
    cache.set("a-cached-value", 1, 60)
    try:
        cache.clear()
        assert cache.get("a-cached-value") is None
        assert raw.get(other) == b"queued work"  # FLUSHDB would have dropped Celery's queue with it
    finally:
        raw.delete(other)
