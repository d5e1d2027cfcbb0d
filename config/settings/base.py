"""Settings for every environment; production differs only by environment variables.

Variables: DEBUG, SECRET_KEY, ALLOWED_HOSTS, CSRF_TRUSTED_ORIGINS, DATABASE_URL,
REDIS_URL, DATA_DIR, CREDENTIALS_KEYS, METRICS_ALLOWED_HOSTS and the METRICS_* /
PULL_* limits, API_TOKEN_DAYS / API_TOKEN_MAX_DAYS, SECURE_SSL_REDIRECT,
SECURE_HSTS_SECONDS, mail settings (DEFAULT_FROM_EMAIL, EMAIL_BACKEND), SITE_URL; the
server, rate limits, health checks, logs and error reports (the block at the end).
See README.md.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import csp.constants as csp
import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from config.env import default_site_url, env_bool, env_float, env_int, env_list, env_str
from config.observability import logging_config, sentry_init

BASE_DIR = Path(__file__).resolve().parent.parent.parent
DATA_DIR = Path(env_str("DATA_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)

_DEV_SECRET_KEY = "django-insecure-development-only-key-never-used-when-DEBUG-is-off"
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = _DEV_SECRET_KEY

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "simple_history",
    "django_htmx",
    "valuetree",
    "outcomes",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # A NUL in the URL is a 400 before it can reach PostgreSQL (issue 14 §4).
    "valuetree.middleware.RefuseNulMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

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

DATABASE_URL = env_str("DATABASE_URL")
if not DATABASE_URL:
    # Embedded default: SQLite in the data folder.
    DATA_DIR.mkdir(parents=True, exist_ok=True)
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL or f"sqlite:///{DATA_DIR / 'valuetree.sqlite3'}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # --- Embedded SQLite under concurrent writes (issue 16, point 10) ---
    # The file is shared by the server's worker processes and threads and the Celery
    # worker: WAL lets readers run beside the one writer; IMMEDIATE makes every
    # transaction take the write lock when it begins, so a transaction that reads
    # before it writes waits its turn (busy timeout) instead of failing at once with
    # "database is locked" (SQLite cannot upgrade a read lock under a waiting writer).
    # tests/ops/test_sqlite_concurrency.py keeps it so.
    # config.sqlite queues each process's writers for that lock (see its docstring).
    DATABASES["default"]["ENGINE"] = "config.sqlite"
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": env_int("SQLITE_BUSY_TIMEOUT", 20),  # seconds a writer waits for the lock
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Celery: Redis in production; an embedded broker on disk when REDIS_URL is unset. ---
REDIS_URL = env_str("REDIS_URL", "")
BROKER_DIR = DATA_DIR / "broker"
# (A host name, though the embedded broker needs none: without one kombu logs a
# warning on every connection.)
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "") or REDIS_URL or "filesystem://localhost/"
if CELERY_BROKER_URL.startswith("filesystem://"):
    # Kombu's file transport: messages are files in the data folder, so the worker and
    # beat started by `make run` share them without any server (not for production).
    for _folder in ("queue", "processed", "control"):
        (BROKER_DIR / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
else:
    # An unacknowledged message (its worker died) is delivered again after this long.
    # It must exceed the longest task; the pull sweeper recovers sooner (PULL_STUCK_AFTER).
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600)
    }
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = "UTC"
# Tasks are acknowledged after they finish and given back if their worker dies;
# each worker thread takes one message at a time.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery closes the database connection around every task unless told to reuse it;
# a new PostgreSQL connection per pull (a forked backend) cost more than the pull.
CELERY_DB_REUSE_MAX = env_int("CELERY_DB_REUSE_MAX", 100)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 60)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 90)
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_ROUTES = {
    "outcomes.tasks.pull_metric": {"queue": "pulls"},
    "outcomes.tasks.evaluate_measures": {"queue": "verdicts"},
    "outcomes.tasks.evaluate_all_measures": {"queue": "verdicts"},
    # Scheduled review reports: their own queue, so a big PDF never delays a pull.
    "outcomes.tasks.run_review_schedule": {"queue": "reports"},
    "outcomes.tasks.send_delivery": {"queue": "reports"},
    "valuetree.tasks.email_notification": {"queue": "reports"},
}
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
# One schedule list. Each metric's own schedule lives in the database; beat only fans out.
CELERY_BEAT_SCHEDULE = {
    "pull-due-metrics": {"task": "outcomes.tasks.pull_due_metrics", "schedule": 30.0},
    "sweep-stuck-pulls": {"task": "outcomes.tasks.sweep_stuck_pulls", "schedule": 60.0},
    "run-due-review-schedules": {
        "task": "outcomes.tasks.run_due_review_schedules",
        "schedule": 60.0,
    },
    "evaluate-all-measures": {
        "task": "outcomes.tasks.evaluate_all_measures",
        "schedule": crontab(minute=10, hour=2),
        "options": {"queue": "verdicts"},
    },
    "prune-history": {
        "task": "outcomes.tasks.prune_history",
        "schedule": crontab(minute=40, hour=3),
        "options": {"queue": "verdicts"},
    },
}
# Retention (outcomes/retention.py): older verdicts and pull runs are pruned daily;
# current and referenced verdicts, the latest runs and runs that stored values stay.
VERDICT_HISTORY_DAYS = env_int("VERDICT_HISTORY_DAYS", 400)
PULL_RUN_HISTORY_DAYS = env_int("PULL_RUN_HISTORY_DAYS", 90)
PULL_RUNS_KEEP_LATEST = env_int("PULL_RUNS_KEEP_LATEST", 100)
# Report deliveries (outcomes/reports): retries of a transient failure, first backoff (s).
REPORT_DELIVERY_MAX_RETRIES = env_int("REPORT_DELIVERY_MAX_RETRIES", 6)
REPORT_DELIVERY_BACKOFF = env_int("REPORT_DELIVERY_BACKOFF", 30)
# A delivery left "sending" (or queued) this long is taken over: its worker died.
REPORT_DELIVERY_LEASE_SECONDS = env_int(
    "REPORT_DELIVERY_LEASE_SECONDS", CELERY_TASK_TIME_LIMIT + 30
)

# --- Metrics: limits of a pull, outbound HTTP policy, source credentials. ---
METRICS_FETCH_TIMEOUT = env_int("METRICS_FETCH_TIMEOUT", 10)  # seconds, whole request
METRICS_MAX_RESPONSE_BYTES = env_int("METRICS_MAX_RESPONSE_BYTES", 1024 * 1024)
METRICS_MAX_POINTS = env_int("METRICS_MAX_POINTS", 10_000)
# Hosts (or host:port) that may resolve to private or loopback addresses. Every other
# outbound address must be public; checked when connecting, redirects included.
METRICS_ALLOWED_HOSTS = env_list("METRICS_ALLOWED_HOSTS", [])
# SQLite warehouses may only be read from these folders (never the app's own database).
METRICS_SQLITE_DIRS = env_list("METRICS_SQLITE_DIRS", [str(DATA_DIR / "warehouses")])
# Serve /demo/live-metrics/, the endpoint the demo's HTTP JSON source reads.
DEMO_ENDPOINTS = env_bool("DEMO_ENDPOINTS", DEBUG)
METRICS_UNHEALTHY_AFTER = env_int("METRICS_UNHEALTHY_AFTER", 3)  # consecutive failures
PULL_MAX_RETRIES = env_int("PULL_MAX_RETRIES", 3)
# A pull claimed longer ago than this never finished (its worker died): queue it again.
PULL_STUCK_AFTER = env_int("PULL_STUCK_AFTER_SECONDS", 15 * 60)
# Fernet keys for source credentials, newest first; older keys still decrypt, and
# `manage.py rotate_credentials` re-encrypts everything with the newest.
CREDENTIALS_KEYS = env_list("CREDENTIALS_KEYS", [])
if not CREDENTIALS_KEYS and not DEBUG:
    raise ImproperlyConfigured(
        "CREDENTIALS_KEYS must be set when DEBUG is off (generate one with "
        "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`)."
    )

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

LANGUAGE_CODE = "en-gb"
# ISO first among the input formats, so date inputs render values browsers can show.
FORMAT_MODULE_PATH = ["config.formats"]
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# --- Security: on by default whenever DEBUG is off, so `check --deploy` is clean. ---
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("TRUST_X_FORWARDED_PROTO", False) else None
)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "valuetree@localhost")
# For EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackend.
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
# The address users reach the service at, for links in e-mails.
# Where links in e-mails point. Unset: the address `make run` serves on (its PORT).
SITE_URL = (env_str("SITE_URL") or default_site_url(env_str("PORT"))).rstrip("/")

REST_FRAMEWORK = {
    # Token first: its WWW-Authenticate header makes anonymous calls answer 401, not 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # knox's, with one query per request (valuetree/auth.py).
        "valuetree.auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "valuetree.pagination.PageNumberPagination",
    # JSON bodies go through the safe document limits: depth, size, no NUL (issue 14);
    # the endpoints that read CSV, YAML or uploads name their parsers.
    "DEFAULT_PARSER_CLASSES": ["valuetree.parsers.JSONParser"],
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "valuetree.strict.DjangoFilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "valuetree.openapi.AutoSchema",
    # Amounts keep their 2 decimals exactly: "1250.50", documented as decimal strings.
    "COERCE_DECIMAL_TO_STRING": True,
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

# API tokens (django-rest-knox): hashed, named, expiring; `Authorization: Token <token>`.
KNOX_TOKEN_MODEL = "valuetree.ApiToken"
# knox's migrations create its own token table even when the model is swapped; with
# none, nobody creates a table that nothing uses (and that would block test flushes).
MIGRATION_MODULES = {"knox": None}
API_TOKEN_DAYS = env_int("API_TOKEN_DAYS", 90)  # the default lifetime of a new token
API_TOKEN_MAX_DAYS = env_int("API_TOKEN_MAX_DAYS", 365)
# Working (unexpired) tokens a user may hold at once: each is a row, made by a form.
API_TOKEN_LIMIT_PER_USER = env_int("API_TOKEN_LIMIT_PER_USER", 50)
if not 1 <= API_TOKEN_DAYS <= API_TOKEN_MAX_DAYS:
    raise ImproperlyConfigured(
        f"API_TOKEN_DAYS must be from 1 to API_TOKEN_MAX_DAYS ({API_TOKEN_MAX_DAYS}), "
        f"got {API_TOKEN_DAYS}: no token could have the default lifetime."
    )
REST_KNOX = {
    "TOKEN_TTL": timedelta(days=API_TOKEN_DAYS),
    "TOKEN_PREFIX": "vt_",  # lets secret scanners recognise a leaked token
    "AUTO_REFRESH": False,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Valuetree API",
    "DESCRIPTION": "Lean Value Trees, their measures and the data products that serve them.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Every operation documents its error responses and their shapes (valuetree/openapi.py).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "valuetree.openapi.add_error_responses",
    ],
    "ENUM_NAME_OVERRIDES": {
        "MembershipRoleEnum": "valuetree.models.Role",
        "DataProductLinkRoleEnum": "valuetree.models.LinkRole",
        "NodeKindEnum": "valuetree.models.NodeKind",
        "MeasureKindEnum": "outcomes.models.MeasureKind",
        "SourceKindEnum": "outcomes.models.SourceKind",
        "PullStatusEnum": "outcomes.models.PullStatus",
        "NodeStatusEnum": "valuetree.models.NodeStatus",
        "VerdictStatusEnum": "outcomes.models.VerdictStatus",
        "LifecycleStageEnum": "valuetree.models.LifecycleStage",
        "NotificationKindEnum": "valuetree.models.NotificationKind",
        "DecisionKindEnum": "outcomes.reviews.models.DecisionKind",
        "LearningKindEnum": "outcomes.reviews.models.LearningKind",
        "EvidenceKindEnum": "outcomes.reviews.models.EvidenceKind",
        "ReviewStatusEnum": "outcomes.reviews.models.ReviewStatus",
        "ChannelEnum": "outcomes.reports.models.Channel",
    },
}

# LOGGING: below, with the error reports (LOG_FORMAT, LOG_LEVEL).
REST_FRAMEWORK |= {
    "EXCEPTION_HANDLER": "valuetree.apis.exception_handler",
    # `?format=` is ours (tree export), not DRF's renderer override.
    "URL_FORMAT_OVERRIDE": None,
}

# === Running it at work (issue 16b): production server, health, limits ===================
# Kept in one block to ease merging with the other settings changes of issue 16.
INSTALLED_APPS += ["ops"]
# Beat's schedule file lives in the data folder, whatever the database.
DATA_DIR.mkdir(parents=True, exist_ok=True)
# Health checks answer before host validation and HTTPS redirects (config/middleware.py);
# then a limit on request bodies before anything reads them.
MIDDLEWARE = [
    "config.middleware.HealthCheckMiddleware",
    MIDDLEWARE[0],  # SecurityMiddleware
    "config.middleware.RequestSizeLimitMiddleware",
    *MIDDLEWARE[1:],
]
# Where collectstatic puts the static files whitenoise serves (the Docker image: /app/staticfiles).
STATIC_ROOT = Path(env_str("STATIC_ROOT", "") or STATIC_ROOT)
# Largest request body accepted, in bytes (413 above it); 0 turns the limit off.
REQUEST_MAX_BYTES = env_int("REQUEST_MAX_BYTES", 10 * 1024 * 1024)
# /readyz: how old beat's and a worker's heartbeats may be, and how late a pull (seconds).
READY_BEAT_MAX_AGE = env_int("READY_BEAT_MAX_AGE", 60)
READY_WORKER_MAX_AGE = env_int("READY_WORKER_MAX_AGE", 120)
READY_MAX_LATE_PULL = env_int("READY_MAX_LATE_PULL", 15 * 60)
READY_BROKER_TIMEOUT = env_int("READY_BROKER_TIMEOUT", 2)
# Beat records its own heartbeat on each tick and sends a worker's every 30 s.
CELERY_BEAT_SCHEDULER = "ops.beat:HeartbeatScheduler"
CELERY_BEAT_SCHEDULE["worker-heartbeat"] = {
    "task": "ops.tasks.worker_heartbeat",
    "schedule": 30.0,
}

# --- Rate limits (issue 16b, point 7): DRF throttles, the login lockout (django-axes) ---
_RATE = re.compile(r"^\d+/(s|sec|second|m|min|minute|h|hour|d|day)$")


def _throttle_rate(name: str, default: str) -> str | None:
    """A rate like "60/min" from the environment; empty or "off" means no limit."""
    value = (env_str(name, default) or "").strip()
    if value.lower() in {"", "off", "0"}:
        return None
    if not _RATE.match(value):
        raise ImproperlyConfigured(f"{name} must be a rate like 60/min or 30/hour, got {value!r}")
    return value


# Throttle counters and other shared state: Redis when configured, so all server
# processes count together; otherwise each process counts on its own.
CACHE_URL = env_str("CACHE_URL", "") or REDIS_URL
CACHES = {
    "default": (
        {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_URL,
            "KEY_PREFIX": "valuetree",
        }
        if CACHE_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}
REST_FRAMEWORK |= {
    "DEFAULT_THROTTLE_CLASSES": [
        "config.throttling.AnonThrottle",
        "config.throttling.UserThrottle",
        "config.throttling.ScopedThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": _throttle_rate("THROTTLE_ANON", "60/min"),  # per address
        "user": _throttle_rate("THROTTLE_USER", "1200/min"),  # per user, every API call
        # Costly writes, per user, API and browser together.
        "imports": _throttle_rate("THROTTLE_IMPORTS", "30/hour"),
        "pulls": _throttle_rate("THROTTLE_PULLS", "60/hour"),
        "evaluations": _throttle_rate("THROTTLE_EVALUATIONS", "120/hour"),
        # Reports rendered on demand (a draft's PDF, the other orientation), per user.
        "renders": _throttle_rate("THROTTLE_RENDERS", "60/hour"),
        "logins": _throttle_rate("THROTTLE_LOGINS", "20/min"),  # login POSTs per address
    },
    # Proxies in front of the server whose X-Forwarded-For is trusted; 0 ignores the
    # header (a client could write anything there).
    "NUM_PROXIES": env_int("NUM_PROXIES", 0),
}
INSTALLED_APPS += ["axes"]
MIDDLEWARE += ["axes.middleware.AxesMiddleware"]  # last, as django-axes requires
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# An account is locked at one address after this many failed logins in a row, for the
# cool-off time; a success resets the count. The right password is refused meanwhile.
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "config.throttling.client_ip"
AXES_LOCKOUT_CALLABLE = "config.throttling.lockout_response"

# --- Content-Security-Policy (issue 16b, point 11; django-csp 4) ---
# Scripts only from our own static files: no inline script, no eval. Figures travel as
# json_script data blocks drawn by static/js/charts.js. Styles may be inline: Plotly
# and the status swatches set style attributes. tests/ops/test_csp.py scans every
# template for inline scripts and every demo page for the header.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [csp.SELF],
        "script-src": [csp.SELF],
        "style-src": [csp.SELF, csp.UNSAFE_INLINE],
        "img-src": [csp.SELF, "data:", "blob:"],
        "font-src": [csp.SELF, "data:"],
        "connect-src": [csp.SELF],
        "object-src": [csp.NONE],
        "base-uri": [csp.SELF],
        "form-action": [csp.SELF],
        "frame-ancestors": [csp.NONE],
    }
}
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1,
    "csp.middleware.CSPMiddleware",
)

# --- Logs and error reports (issue 16b, point 14) ---
# One JSON object per line unless DEBUG (or LOG_FORMAT=text); Celery's workers and
# beat log through the same handler instead of their own.
LOG_FORMAT = env_str("LOG_FORMAT", "") or ("text" if DEBUG else "json")
if LOG_FORMAT not in {"json", "text"}:
    raise ImproperlyConfigured(f"LOG_FORMAT must be json or text, got {LOG_FORMAT!r}")
LOGGING = logging_config(fmt=LOG_FORMAT, level=env_str("LOG_LEVEL", "INFO") or "INFO")
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Errors of the web server and the workers go to Sentry when SENTRY_DSN is set, with
# no credentials (config/observability.py).
SENTRY_DSN = env_str("SENTRY_DSN", "")
if SENTRY_DSN:
    sentry_init(
        dsn=SENTRY_DSN,
        environment=env_str("SENTRY_ENVIRONMENT", "") or "",
        release=env_str("SENTRY_RELEASE", "") or "",
        traces_sample_rate=env_float("SENTRY_TRACES_SAMPLE_RATE", 0.0),
    )

# --- Static files in production (issue 16b, point 12): hashed names, gzip, whitenoise ---
if not DEBUG:
    STORAGES["staticfiles"] = {"BACKEND": "config.storage.GzipManifestStaticFilesStorage"}
