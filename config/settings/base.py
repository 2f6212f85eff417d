"""Settings shared by every environment; each value comes from the environment.

Development defaults point at the embedded PostgreSQL and Redis that
`python -m config.embedded_services` starts, so a fresh clone runs as is.
"""
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}") from exc


# SECURITY
DEBUG = env_bool("DJANGO_DEBUG", True)
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY is required when DJANGO_DEBUG is off")
    SECRET_KEY = "dev-only-insecure-key-never-use-in-production"  # noqa: S105 - development only
ALLOWED_HOSTS = [h.strip() for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver").split(",") if h.strip()]
CSRF_TRUSTED_ORIGINS = [o.strip() for o in os.environ.get("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "django_celery_results",
    "django_celery_beat",
    "config",
    "sagas",
    "tournament",
    "scores",
    "leaderboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# DATABASES
# One alias per service, each with its own PostgreSQL schema. `DATABASE_URL`
# serves every alias; `<SERVICE>_DATABASE_URL` moves one service elsewhere.
EMBEDDED_DATABASE_URL = "postgres://postgres@127.0.0.1:54329/tournament_platform"
SERVICE_SCHEMAS = {
    "tournament": "tournament",
    "scores": "scores",
    "sagas": "sagas",
    "leaderboard": "leaderboard",
}
CONN_MAX_AGE = env_int("DATABASE_CONN_MAX_AGE", 60)


def database_config(alias: str, schema: str | None) -> dict:
    url = os.environ.get(f"{alias.upper()}_DATABASE_URL") or os.environ.get("DATABASE_URL") or EMBEDDED_DATABASE_URL
    config = dj_database_url.parse(
        url, engine="config.postgres_backend", conn_max_age=CONN_MAX_AGE, conn_health_checks=True
    )
    options = config.setdefault("OPTIONS", {})
    # Statements run this often through `prepared_cursor` are prepared (Django's own cursors never are);
    # DATABASE_PREPARE_THRESHOLD=off for a pooler that cannot keep prepared statements (Django's default).
    threshold = os.environ.get("DATABASE_PREPARE_THRESHOLD", "5")
    options["prepare_threshold"] = None if threshold.lower() == "off" else int(threshold)
    settings = [options.get("options", "")]  # any `?options=` of the URL comes first
    if schema:
        # The schema is the service boundary: unqualified names resolve only there.
        settings.append(f"-c search_path={schema}")
    if options["prepare_threshold"] is not None:
        # A prepared statement keeps one generic plan. Left to choose, PostgreSQL plans anew on every run any
        # statement taking an array, as it cannot cost the array's length in advance (pg_stat_statements).
        settings.append("-c plan_cache_mode=force_generic_plan")
    options["options"] = " ".join(setting for setting in settings if setting)
    return config


DATABASES = {"default": database_config("default", None)}
DATABASES.update({alias: database_config(alias, schema) for alias, schema in SERVICE_SCHEMAS.items()})
DATABASE_ROUTERS = ["config.db_routers.ServiceRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

# SCORE LEDGER
# A snapshot of a ledger stream is written every this many events; loading
# then reads the latest snapshot and fewer than this many events after it.
# Scoring a match loads two streams, so a load reading ~5 events instead of ~25
# is worth a snapshot row per 10 events (written in the same bulk INSERT).
SCORES_LEDGER_SNAPSHOT_EVERY = env_int("SCORES_LEDGER_SNAPSHOT_EVERY", 10)

# REST FRAMEWORK
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "config.api_errors.json_exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Tournament platform",
    "DESCRIPTION": "Match Engine, Score Engine and saga operations.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Two "status" choice sets (a tournament's, a ledger's): name each for what it is.
    "ENUM_NAME_OVERRIDES": {
        "TournamentStatusEnum": "tournament.models.TournamentStatus",
        "LedgerStatusEnum": ["OPEN", "CLOSED"],
    },
}

# CELERY
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or os.environ.get("REDIS_URL") or "redis://127.0.0.1:63799/0"
# kombu's Redis transport with one client per channel (see config/broker.py); other brokers keep their own.
CELERY_BROKER_TRANSPORT = "config.broker:Transport" if CELERY_BROKER_URL.startswith("redis://") else None
# A message not acknowledged within this many seconds is handed to another
# worker. It must exceed the longest task and the longest countdown/ETA.
CELERY_BROKER_VISIBILITY_TIMEOUT = env_int("CELERY_BROKER_VISIBILITY_TIMEOUT", 3600)
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_BROKER_VISIBILITY_TIMEOUT}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXTENDED = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_TASK_TRACK_STARTED = True
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 300)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 240)
CELERY_TASK_DEFAULT_QUEUE = "sagas"
CELERY_TASK_ROUTES = {f"{service}.*": {"queue": service} for service in SERVICE_SCHEMAS}
CELERY_BEAT_SCHEDULER = "config.beat.SingletonDatabaseScheduler"
CELERY_BEAT_SCHEDULE: dict = {}
# A beat process must renew its lock within this many seconds or another takes over.
CELERY_BEAT_LOCK_TIMEOUT = env_int("CELERY_BEAT_LOCK_TIMEOUT", 30)
CELERY_TIMEZONE = TIME_ZONE

# MESSAGING BACKBONE (outbox, relay, inbox; see sagas/relay.py and sagas/inbox.py)
# Events of one aggregate travel on queue `<EVENT_QUEUE_PREFIX>.<crc32(key) % EVENT_PARTITIONS>`.
EVENT_PARTITIONS = env_int("EVENT_PARTITIONS", 4)
EVENT_QUEUE_PREFIX = os.environ.get("EVENT_QUEUE_PREFIX", "events")
# Worker processes `consume_events` splits the partitions between (one per core; a partition has one owner).
EVENT_CONSUMER_PROCESSES = env_int("EVENT_CONSUMER_PROCESSES", 2)
OUTBOX_BATCH_SIZE = env_int("OUTBOX_BATCH_SIZE", 1000)
# Failed publishes of a row before it becomes DEAD (requeued from the admin).
OUTBOX_MAX_ATTEMPTS = env_int("OUTBOX_MAX_ATTEMPTS", 5)
# How long the relay holds a row whose previous version is not visible yet
# (a transaction holding it has not committed) before sending it anyway.
OUTBOX_ORDER_HOLD_SECONDS = env_int("OUTBOX_ORDER_HOLD_SECONDS", 10)
OUTBOX_RETENTION_HOURS = env_int("OUTBOX_RETENTION_HOURS", 7 * 24)
# How a commit wakes the relay: "kick" (a relay task sent after commit) or
# "notify" (NOTIFY at commit, heard by `drain_outbox --loop --listen`).
OUTBOX_WAKEUP = os.environ.get("OUTBOX_WAKEUP", "kick")
if OUTBOX_WAKEUP not in {"kick", "notify"}:
    raise ImproperlyConfigured(f"OUTBOX_WAKEUP must be 'kick' or 'notify', got {OUTBOX_WAKEUP!r}")
# Back-pressure of the relay tasks: a partition whose queue already holds this many batches not yet taken gets no
# new one (0: off); its rows leave together in one larger batch on a pass OUTBOX_DEFERRED_PASS_SECONDS later.
# That later pass also serves rows the order guard held and partitions another relay held (0: the beat tick does).
OUTBOX_MAX_WAITING_BATCHES = env_int("OUTBOX_MAX_WAITING_BATCHES", 1)
OUTBOX_DEFERRED_PASS_SECONDS = float(os.environ.get("OUTBOX_DEFERRED_PASS_SECONDS", "0.02"))
# Queue of the relay tasks (after-commit kick, beat tick, re-publish requests).
OUTBOX_RELAY_QUEUE = os.environ.get("OUTBOX_RELAY_QUEUE", "sagas")
# The outboxes (service names) a relay task sends, comma-separated; empty: every one. Every worker of one relay
# queue must relay the same outboxes: a pass clears that queue's one kick flag for all of them.
OUTBOX_RELAY_SERVICES = [name for name in os.environ.get("OUTBOX_RELAY_SERVICES", "").split(",") if name.strip()]
# A version gap a consumer still sees after this long is re-fetched from the producer.
INBOX_GAP_DEADLINE_SECONDS = env_int("INBOX_GAP_DEADLINE_SECONDS", 30)
INBOX_GAP_CHECKS = env_int("INBOX_GAP_CHECKS", 5)
# A delivered batch is applied per consumer in transactions of at most this many events; a chunk that waits
# longer than the lock timeout for another consumer process's locks is redone event by event. The consumers
# take their locks in key order, so a wait is usually another chunk's commit (milliseconds); one that lasts
# (a rebuild, an operator's transaction) or a deadlock PostgreSQL detects sends the chunk to the short
# transactions, which wait.
INBOX_BATCH_SIZE = env_int("INBOX_BATCH_SIZE", 100)
INBOX_BATCH_LOCK_TIMEOUT_MS = env_int("INBOX_BATCH_LOCK_TIMEOUT_MS", 2000)
CELERY_BEAT_SCHEDULE.update({
    # The relay's safety net (a lost kick, a broker that was down); the kick makes events leave at once.
    "outbox-relay-tick": {"task": "sagas.relay_outbox", "schedule": 1.0,
                          "options": {"queue": OUTBOX_RELAY_QUEUE, "expires": 5}},
    "outbox-purge": {"task": "sagas.purge_outbox", "schedule": 3600.0,
                     "options": {"queue": OUTBOX_RELAY_QUEUE, "expires": 600}},
})

# SAGAS
# Seconds a step may stand still before the watchdog re-sends it (longer than
# a step's run time plus its queueing delay at peak: a re-send is harmless but
# adds load), and a saga's overall deadline after which it compensates instead.
# Steps retry transient errors with exponential backoff and full jitter:
# SAGAS_RETRY_BACKOFF * 2**n, at most SAGAS_RETRY_BACKOFF_MAX seconds.
SAGAS_STEP_TIMEOUT = float(os.environ.get("SAGAS_STEP_TIMEOUT", "60"))
SAGAS_DEADLINE = float(os.environ.get("SAGAS_DEADLINE", "600"))
SAGAS_STEP_MAX_RETRIES = env_int("SAGAS_STEP_MAX_RETRIES", 5)
SAGAS_RETRY_BACKOFF = float(os.environ.get("SAGAS_RETRY_BACKOFF", "1"))
SAGAS_RETRY_BACKOFF_MAX = float(os.environ.get("SAGAS_RETRY_BACKOFF_MAX", "30"))
# Compensation re-drives without progress before a saga is FAILED for an operator.
SAGAS_MAX_REDRIVES = env_int("SAGAS_MAX_REDRIVES", 10)
SAGAS_WATCHDOG_INTERVAL = float(os.environ.get("SAGAS_WATCHDOG_INTERVAL", "10"))
# Test and drill only: lets `sagas.faults` inject failures armed in Redis.
SAGAS_FAULT_INJECTION = env_bool("SAGAS_FAULT_INJECTION", False)
CELERY_BEAT_SCHEDULE["sagas-watchdog"] = {
    "task": "sagas.watchdog",
    "schedule": SAGAS_WATCHDOG_INTERVAL,
    "options": {"expires": SAGAS_WATCHDOG_INTERVAL},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}
