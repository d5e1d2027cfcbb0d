"""Settings for every environment; production differs only by environment variables.

Variables: DEBUG, SECRET_KEY, ALLOWED_HOSTS, CSRF_TRUSTED_ORIGINS, DATABASE_URL,
REDIS_URL, DATA_DIR, CREDENTIALS_KEYS, METRICS_ALLOWED_HOSTS and the METRICS_* /
PULL_* limits, API_TOKEN_DAYS / API_TOKEN_MAX_DAYS, SECURE_SSL_REDIRECT,
SECURE_HSTS_SECONDS, mail settings
(DEFAULT_FROM_EMAIL, EMAIL_BACKEND), SITE_URL. See README.md.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_int, env_list, env_str

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
    # The embedded database is shared by the web server and the worker's threads:
    # WAL lets readers run beside a writer, IMMEDIATE transactions queue writers up
    # behind the busy timeout instead of failing with "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Celery: Redis in production; an embedded broker on disk when REDIS_URL is unset. ---
REDIS_URL = env_str("REDIS_URL", "")
BROKER_DIR = DATA_DIR / "broker"
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "") or REDIS_URL or "filesystem://"
if CELERY_BROKER_URL == "filesystem://":
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
SITE_URL = (env_str("SITE_URL", "http://127.0.0.1:8000") or "").rstrip("/")

REST_FRAMEWORK = {
    # Token first: its WWW-Authenticate header makes anonymous calls answer 401, not 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "knox.auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "COERCE_DECIMAL_TO_STRING": False,
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

# API tokens (django-rest-knox): hashed, named, expiring; `Authorization: Token <token>`.
KNOX_TOKEN_MODEL = "valuetree.ApiToken"
# knox's migrations create its own token table even when the model is swapped; with
# none, nobody creates a table that nothing uses (and that would block test flushes).
MIGRATION_MODULES = {"knox": None}
API_TOKEN_DAYS = env_int("API_TOKEN_DAYS", 90)  # the default lifetime of a new token
API_TOKEN_MAX_DAYS = env_int("API_TOKEN_MAX_DAYS", 365)
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
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}
REST_FRAMEWORK |= {
    "EXCEPTION_HANDLER": "valuetree.apis.exception_handler",
    # `?format=` is ours (tree export), not DRF's renderer override.
    "URL_FORMAT_OVERRIDE": None,
}
