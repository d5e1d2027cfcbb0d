"""The deployment files, checked without Docker (issue 16 §12): `compose.yaml` against
the Compose Specification's JSON schema (vendored in tests/ops/compose_spec/, see its
README), and the Dockerfile and compose file against what they run — the entry point,
its roles, the management commands of the health checks, the Python version, the
ports and folders — and the Dockerfile's own build steps, run here as the image would.

Nothing here builds an image: there is no Docker daemon (nor podman) where the suite
runs. What is left to a real build: the base images' contents and the network."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import jsonschema
import yaml
from cryptography.fernet import Fernet
from django.core.management import get_commands
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = Path(__file__).resolve().parent / "compose_spec" / "compose-spec.json"
APP_SERVICES = ("web", "worker", "beat")


def compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile's instructions, (KEYWORD, arguments), continuation lines joined."""
    instructions, pending = [], ""
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).strip().partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    return instructions


def instruction(keyword: str) -> list[str]:
    return [arguments for found, arguments in dockerfile() if found == keyword]


def image_env() -> dict[str, str]:
    """The ENV of the Dockerfile (KEY=value pairs)."""
    env = {}
    for arguments in instruction("ENV"):
        for pair in shlex.split(arguments):
            key, _, value = pair.partition("=")
            env[key] = value
    return env


def serve_roles() -> set[str]:
    """The roles `scripts/serve` answers to (its `case`)."""
    script = (ROOT / "scripts" / "serve").read_text()
    return set(re.findall(r"^\s+(\w+)\)", script, flags=re.MULTILINE))


def test_compose_yaml_is_valid_against_the_compose_specification():
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))
    errors = sorted(validator.iter_errors(compose()), key=lambda error: list(error.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_the_schema_check_catches_a_wrong_compose_file():
    """The check above could fail: a misspelt key and a bad type are refused."""
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))
    wrong = compose()
    wrong["services"]["web"]["helthcheck"] = wrong["services"]["web"].pop("healthcheck")
    wrong["services"]["db"]["restart"] = ["always"]
    messages = [error.message for error in validator.iter_errors(wrong)]
    assert any("helthcheck" in message for message in messages)
    assert any("is not of type 'string'" in message for message in messages)


def test_every_part_the_issue_names_is_a_service_with_a_health_check_and_a_volume():
    services = compose()["services"]
    assert set(services) == {*APP_SERVICES, "db", "redis"}
    assert services["db"]["image"].startswith("postgres:")
    assert services["redis"]["image"].startswith("redis:")
    declared = set(compose()["volumes"])
    for name, service in services.items():
        test = service["healthcheck"]["test"]
        assert test[0] in {"CMD", "CMD-SHELL"} and len(test) > 1, name
        mounted = {volume.split(":")[0] for volume in service["volumes"]}
        assert mounted and mounted <= declared, name
    # Data lives in named volumes where each program keeps it.
    assert "pgdata:/var/lib/postgresql/data" in services["db"]["volumes"]
    assert "redisdata:/data" in services["redis"]["volumes"]
    data_dir = image_env()["DATA_DIR"]
    for name in APP_SERVICES:
        assert f"data:{data_dir}" in services[name]["volumes"], name
    assert instruction("VOLUME") == [json.dumps([data_dir])]


def test_secrets_come_from_the_environment_and_none_is_written_in_the_files():
    services = compose()["services"]
    for name in APP_SERVICES:
        environment = services[name]["environment"]
        for secret in ("SECRET_KEY", "CREDENTIALS_KEYS"):
            # ${NAME:?message}: compose refuses to start without it.
            assert re.fullmatch(rf"\$\{{{secret}:\?[^}}]+\}}", environment[secret]), secret
        assert "${POSTGRES_PASSWORD:?" in environment["DATABASE_URL"]
        assert environment["DEBUG"] == "0"
        assert environment["REDIS_URL"] == "redis://redis:6379/0"
        assert "@db:5432/" in environment["DATABASE_URL"]
    assert services["db"]["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    # The web, worker and beat wait for healthy dependencies.
    assert services["web"]["depends_on"] == {
        "db": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
    }
    for name in ("worker", "beat"):
        assert services[name]["depends_on"] == {"web": {"condition": "service_healthy"}}


def test_what_the_services_run_exists():
    """Each command is a role of scripts/serve; each health check names a real
    management command, the worker's node name and the port the web server binds."""
    services = compose()["services"]
    roles = serve_roles()
    assert {"web", "worker", "beat", "all"} <= roles
    for name in APP_SERVICES:
        command = services[name]["command"]
        assert command[0] == "scripts/serve" and command[1] in roles, name
    assert os.access(ROOT / "scripts" / "serve", os.X_OK)
    beat = services["beat"]["healthcheck"]["test"]
    assert beat[1:4] == ["python", "manage.py", "heartbeat_check"]
    assert "heartbeat_check" in get_commands()
    worker = services["worker"]["healthcheck"]["test"][1]
    assert "-A config" in worker and (ROOT / "config" / "celery.py").exists()
    # `--destination worker@$HOSTNAME` ($$ is compose's escape) is the node name
    # scripts/serve gives the worker (`--hostname "worker@%h"`).
    assert "--destination worker@$$HOSTNAME" in worker
    assert '--hostname "worker@%h"' in (ROOT / "scripts" / "serve").read_text()
    port = image_env()["PORT"]
    assert instruction("EXPOSE") == [port]
    assert services["web"]["ports"] == [f"${{PORT:-8000}}:{port}"]
    assert f"http://127.0.0.1:{port}/healthz" in services["web"]["healthcheck"]["test"][-1]


def test_the_image_runs_a_python_the_project_supports():
    (base,) = instruction("FROM")
    version = re.fullmatch(r"python:(\d+\.\d+)-slim-\w+", base)
    assert version, base
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert SpecifierSet(project["requires-python"]).contains(version[1] + ".0")
    # The version the suite itself runs on, so the image runs what was tested.
    assert version[1] == f"{sys.version_info.major}.{sys.version_info.minor}"


def test_the_image_starts_the_entry_point_as_an_unprivileged_user():
    assert instruction("CMD") == ['["scripts/serve", "web"]']
    assert instruction("USER") == ["valuetree"]
    assert instruction("WORKDIR") == ["/app"]
    assert image_env()["STATIC_ROOT"].startswith("/app/")
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".env", ".venv", "var", ".git"} <= set(ignored)


def test_the_images_dependency_step_installs_what_pyproject_lists(tmp_path):
    """The RUN that writes requirements.txt from pyproject.toml, run here."""
    (step,) = [run for run in instruction("RUN") if "requirements.txt" in run]
    script = step.split(" && ")[0].replace("/tmp/requirements.txt", str(tmp_path / "req.txt"))
    assert script.startswith("python -c ")
    subprocess.run(
        [sys.executable, "-c", shlex.split(script)[2]],
        cwd=ROOT,
        check=True,
        stdout=(tmp_path / "req.txt").open("w"),
    )
    listed = (tmp_path / "req.txt").read_text().splitlines()
    assert listed == tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert any(line.startswith("gunicorn") for line in listed)


def test_the_images_collectstatic_step_works_with_its_placeholder_settings(tmp_path):
    """The RUN that collects static files at build time, with the Dockerfile's own
    environment and placeholder secrets (the settings refuse to start without them)."""
    (step,) = [run for run in instruction("RUN") if "collectstatic" in run]
    command = step.split(" && ")[0]
    words = shlex.split(command)
    assignments = dict(word.split("=", 1) for word in words if re.match(r"^[A-Z_]+=", word))
    Fernet(assignments["CREDENTIALS_KEYS"].encode())  # a valid key, or the build fails
    argv = [word for word in words if not re.match(r"^[A-Z_]+=", word)]
    assert argv[:3] == ["python", "manage.py", "collectstatic"]
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DJANGO_SETTINGS_MODULE", "DATABASE_URL"}
    }
    env |= image_env() | assignments
    env |= {"STATIC_ROOT": str(tmp_path / "static"), "DATA_DIR": str(tmp_path / "data")}
    subprocess.run([sys.executable, *argv[1:]], cwd=ROOT, env=env, check=True, timeout=300)
    manifest = json.loads((tmp_path / "static" / "staticfiles.json").read_text())
    assert manifest["paths"]  # hashed names, as whitenoise serves them
    assert list((tmp_path / "static").rglob("*.gz"))


def test_the_settings_an_operator_at_work_must_set_reach_the_containers():
    """compose passes only the variables it lists: NUM_PROXIES set in .env beside the TLS
    proxy that compose asks for never reached the web server, so every client counted as
    the proxy (one login throttle, one anonymous rate and one lockout per user name for
    everyone); the SMTP server's settings and METRICS_ALLOWED_HOSTS did not either."""
    passed = (
        "NUM_PROXIES",
        "EMAIL_HOST",
        "EMAIL_PORT",
        "EMAIL_HOST_USER",
        "EMAIL_HOST_PASSWORD",
        "EMAIL_USE_TLS",
        "DEFAULT_FROM_EMAIL",
        "METRICS_ALLOWED_HOSTS",
    )
    services = compose()["services"]
    for name in APP_SERVICES:
        environment = services[name]["environment"]
        for variable in passed:
            assert str(environment.get(variable, "")).startswith(f"${{{variable}:-"), (
                name,
                variable,
            )
