"""Production settings come only from the environment and pass `check --deploy`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_int, env_list

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION_ENV = {
    "DJANGO_SETTINGS_MODULE": "config.settings.base",
    "DEBUG": "0",
    "SECRET_KEY": "x7Jq2-production-like-secret-9fK3mZp0vR8tL1wB6yN4cH5dG2sA7eQ0uI",
    "ALLOWED_HOSTS": "valuetree.example.com",
}


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DEBUG", "SECRET_KEY", "DJANGO_SETTINGS_MODULE"}
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_passes_with_production_environment(tmp_path):
    result = manage(
        "check", "--deploy", "--fail-level", "WARNING", **PRODUCTION_ENV, DATA_DIR=str(tmp_path)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_flags_an_insecure_override(tmp_path):
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        **PRODUCTION_ENV,
        DATA_DIR=str(tmp_path),
        SESSION_COOKIE_SECURE="0",
    )
    assert result.returncode != 0
    assert "security.W012" in result.stderr + result.stdout


def test_missing_secret_key_refuses_to_start_without_debug(tmp_path):
    env = {**PRODUCTION_ENV, "SECRET_KEY": "", "DATA_DIR": str(tmp_path)}
    result = manage("check", **env)
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off." in result.stderr


def test_bad_boolean_names_the_variable(tmp_path):
    result = manage("check", **{**PRODUCTION_ENV, "DEBUG": "maybe"}, DATA_DIR=str(tmp_path))
    assert result.returncode != 0
    assert "DEBUG must be a boolean" in result.stderr


@pytest.mark.parametrize(
    ("helper", "value", "expected"),
    [
        (env_bool, "yes", True),
        (env_bool, "0", False),
        (env_int, "42", 42),
        (env_list, " a.example, b.example ,", ["a.example", "b.example"]),
    ],
)
def test_env_helpers_parse(monkeypatch, helper, value, expected):
    monkeypatch.setenv("VT_TEST_VAR", value)
    default = [] if helper is env_list else 0
    assert helper("VT_TEST_VAR", default) == expected


@pytest.mark.parametrize(("helper", "value"), [(env_bool, "perhaps"), (env_int, "12x")])
def test_env_helpers_refuse_bad_values(monkeypatch, helper, value):
    monkeypatch.setenv("VT_TEST_VAR", value)
    with pytest.raises(ImproperlyConfigured, match="VT_TEST_VAR"):
        helper("VT_TEST_VAR", 0)


def test_database_url_selects_postgresql_engine(tmp_path):
    code = "from django.conf import settings; print(settings.DATABASES['default']['ENGINE'])"
    result = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=ROOT,
        env={**os.environ, **PRODUCTION_ENV, "DATABASE_URL": "postgres://u@db.example:5432/vt"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip() == "django.db.backends.postgresql", result.stderr


def test_missing_credentials_keys_refuse_to_start_without_debug(tmp_path):
    env = {**PRODUCTION_ENV, "CREDENTIALS_KEYS": "", "DATA_DIR": str(tmp_path)}
    result = manage("check", **env)
    assert result.returncode != 0
    assert "CREDENTIALS_KEYS must be set when DEBUG is off" in result.stderr


@pytest.mark.parametrize(
    ("port", "expected"),
    [
        (None, "http://127.0.0.1:8000"),
        ("8010", "http://127.0.0.1:8010"),
        ("0.0.0.0:8020", "http://127.0.0.1:8020"),
        ("localhost:8030", "http://localhost:8030"),
    ],
)
def test_site_url_follows_the_served_port(port, expected):
    """Links in e-mails use the port `make run` serves on (issue 15, defect 7)."""
    from config.env import default_site_url

    assert default_site_url(port) == expected


def test_site_url_setting_reads_port_when_site_url_is_unset(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in {"SITE_URL", "DJANGO_SETTINGS_MODULE"}}
    result = subprocess.run(
        [sys.executable, "-c", "from django.conf import settings; print(settings.SITE_URL)"],
        cwd=ROOT,
        env={
            **env,
            "DJANGO_SETTINGS_MODULE": "config.settings.base",
            "DEBUG": "1",
            "PORT": "8099",
            "DATA_DIR": str(tmp_path),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip() == "http://127.0.0.1:8099", result.stderr


def test_bad_port_is_refused():
    from config.env import default_site_url

    with pytest.raises(ImproperlyConfigured):
        default_site_url("eighty")


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"API_TOKEN_DAYS": "400"}, "API_TOKEN_DAYS"),  # over the default maximum, 365
        ({"API_TOKEN_DAYS": "0"}, "API_TOKEN_DAYS"),
        ({"API_TOKEN_MAX_DAYS": "30"}, "API_TOKEN_DAYS"),  # the default 90 is over it
    ],
)
def test_a_token_lifetime_no_token_can_have_refuses_to_start(tmp_path, env, named):
    """Otherwise every token the page or issue_token makes by default is refused
    ("A token lives from 1 to 365 days") and knox's TTL disagrees with the form."""
    result = manage("check", **PRODUCTION_ENV, DATA_DIR=str(tmp_path), **env)
    assert result.returncode != 0
    assert named in result.stderr and "ImproperlyConfigured" in result.stderr
