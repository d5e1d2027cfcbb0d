"""Test settings: the base settings with a fixed key and fast hashing.

DATABASE_URL still chooses the database, so the suite runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz")
os.environ.setdefault("CREDENTIALS_KEYS", "dGVzdC1vbmx5LWNyZWRlbnRpYWxzLWtleS0wMTIzNDU=")
# Unit tests queue tasks in memory; the worker tests point this at a real Redis.
os.environ.setdefault("CELERY_BROKER_URL", "memory://")
# Rate limits high enough that no test meets them by accident (the counters outlive a
# test); tests/ops/test_rate_limits.py sets real rates. Likewise the login lockout is
# on only where a test turns it on (Client.login() passes no request, which it needs).
for _scope in ("ANON", "USER", "IMPORTS", "PULLS", "EVALUATIONS", "LOGINS"):
    os.environ.setdefault(f"THROTTLE_{_scope}", "100000/min")

from config.settings.base import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# A worker process started by a test may be pointed at a real (local) SMTP server.
EMAIL_BACKEND = os.environ.get(
    "TEST_EMAIL_BACKEND", "django.core.mail.backends.locmem.EmailBackend"
)
SECURE_SSL_REDIRECT = False
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
STATIC_ROOT = None  # nothing is collected in tests; WhiteNoise serves from the finders
WHITENOISE_USE_FINDERS = True
AXES_ENABLED = False

if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":  # noqa: F405
    # Test databases are thrown away: a commit need not wait for its WAL to reach the
    # disk (about 6 ms a commit on this kind of machine, against 0.1 ms without the
    # wait). A per-session setting any role may change; a crash of the server could
    # lose the last commits of a test run, never corrupt it (PostgreSQL manual, 28.4
    # "Asynchronous Commit").
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = "-c synchronous_commit=off"  # noqa: F405
elif DATABASES["default"]["ENGINE"] == "config.sqlite":  # noqa: F405
    # The test database is SQLite in memory, as Django makes it by default. Said
    # explicitly because pytest-django knows SQLite only by Django's own engine name:
    # for another (config.sqlite) it names each xdist worker's database
    # "test_<path>_gw0", a file that cannot be opened.
    DATABASES["default"].setdefault("TEST", {})["NAME"] = ":memory:"  # noqa: F405
