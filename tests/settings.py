"""The test overlay: its own Redis database, channel prefix, queue and database name, so
that a running demo, and two test runs at once, never disturb each other."""

import os

# Processes a test starts (worker, server) inherit the run's id through the environment.
RUN_ID = os.environ.setdefault("TUTOR_TEST_RUN", str(os.getpid()))
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/9")
os.environ.setdefault("CHANNELS_PREFIX", f"tutortest{RUN_ID}")
os.environ.setdefault("CELERY_QUEUE", f"tutor-test-{RUN_ID}")
os.environ.setdefault("TUTOR_VAR_DIR", os.path.join(os.path.dirname(os.path.dirname(__file__)), "var", "test"))
# The run's processes (this one, the servers and workers it starts) share one metrics folder.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", os.path.join(os.environ["TUTOR_VAR_DIR"], "metrics", RUN_ID))

from tutor.settings import *  # noqa: E402,F403
from tutor.settings import CACHES, DATABASES, VAR_DIR  # noqa: E402

CACHES["default"]["KEY_PREFIX"] = f"tutortest{RUN_ID}-cache"  # clear() removes this run's keys only

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
AXES_ENABLED = os.environ.get("TUTOR_TEST_AXES", "0") == "1"

# No persistent connections: an async test's database thread would otherwise hold one open
# past teardown, and PostgreSQL could not drop the test database.
DATABASES["default"]["CONN_MAX_AGE"] = 0

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{RUN_ID}.sqlite3")}
else:
    DATABASES["default"]["TEST"] = {"NAME": f"test_tutor_{RUN_ID}"}

# A worker or server started by a test reaches the test database under its test name.
if os.environ.get("TUTOR_TEST_DB_NAME"):
    DATABASES["default"]["NAME"] = os.environ["TUTOR_TEST_DB_NAME"]

# The checks' hard cap is a per-draft budget on a quiet worker (bench/quality.py measures
# it); a test machine running the suite beside a model would hit it and say "not
# checked". Tests of the cap set their own.
TUTOR_CHECK_CAP_MS = 2000
TUTOR_MATHS_BUDGET_MS = 1000
