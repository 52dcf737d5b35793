"""The test overlay: its own Redis database and channel prefix, so a running demo and the
test suite never disturb each other."""

import os

os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/9")
os.environ.setdefault("CHANNELS_PREFIX", "tutortest")
os.environ.setdefault("CELERY_QUEUE", "tutor-test")
os.environ.setdefault("TUTOR_VAR_DIR", os.path.join(os.path.dirname(os.path.dirname(__file__)), "var", "test"))

from tutor.settings import *  # noqa: E402,F403
from tutor.settings import DATABASES  # noqa: E402

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
AXES_ENABLED = os.environ.get("TUTOR_TEST_AXES", "0") == "1"

# A worker started by a test reaches the test database under its test name.
if os.environ.get("TUTOR_TEST_DB_NAME"):
    DATABASES["default"]["NAME"] = os.environ["TUTOR_TEST_DB_NAME"]
