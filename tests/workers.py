"""Real Redis servers and real Celery workers for the worker tests and `bench/pull.py`.

A worker runs as its own process group (`celery -A config worker`), on the Django
database the caller names, so it sees what the test committed. `kill()` is `kill -9`.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import redis
from celery import Celery
from kombu import Connection

from tests import postgres

ROOT = Path(__file__).resolve().parent.parent
CELERY = str(Path(sys.executable).with_name("celery"))
SHARED_REDIS = "redis://127.0.0.1:6379"
REDIS_START = (
    'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" '
    "--appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log"
)


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def redis_ready(url: str, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if redis.Redis.from_url(url, socket_timeout=1).ping():
                return True
        except redis.exceptions.ConnectionError:
            time.sleep(0.1)
    return False


def shared_redis_url(db: int) -> str:
    """The machine's Redis (started if it is down), one database of it, emptied."""
    url = f"{SHARED_REDIS}/{db}"
    if not redis_ready(url, timeout=1):
        subprocess.run(REDIS_START, shell=True, check=False)
        if not redis_ready(url):
            raise RuntimeError(f"Redis at {SHARED_REDIS} is down and could not be started.")
    redis.Redis.from_url(url).flushdb()
    return url


class RedisServer:
    """A redis-server of the test's own, on its own port, persisting every write (AOF)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if shutil.which("redis-server") is None:
            raise RuntimeError("redis-server is not installed")
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--dir", str(self.folder),
                "--appendonly", "yes",
                "--appendfsync", "always",
                "--save", "",
                "--logfile", str(self.folder / "redis.log"),
            ],
        )  # fmt: skip
        if not redis_ready(self.url):
            raise RuntimeError(f"redis-server on port {self.port} did not start")

    def kill(self) -> None:
        """SIGKILL: no chance to write anything more than the AOF already holds."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None

    def restart(self) -> None:
        self.kill()
        self.start()


class Worker:
    """A `celery worker` process with its output kept for the failure report."""

    def __init__(self, env: Mapping[str, str], *, threads: int, queues: str, name: str) -> None:
        self.env = env
        self.threads = threads
        self.queues = queues
        self.name = name
        self.output: list[str] = []
        self.process: subprocess.Popen[str] | None = None
        self._ready = threading.Event()

    def start(self, timeout: float = 60.0) -> None:
        self._ready.clear()
        self.process = subprocess.Popen(
            [
                CELERY, "-A", "config", "worker",
                "--pool", "threads", "--concurrency", str(self.threads),
                "--queues", self.queues,
                "--hostname", f"{self.name}@%h",
                "--without-gossip", "--without-mingle", "--without-heartbeat",
                "--loglevel", "INFO",
            ],
            cwd=ROOT,
            env=dict(self.env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group, for kill -9
        )  # fmt: skip
        threading.Thread(target=self._read, args=(self.process,), daemon=True).start()
        if not self._ready.wait(timeout):
            self.stop()
            raise RuntimeError("The Celery worker did not start:\n" + self.log_tail())

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.output.append(line)
            if " ready." in line:
                self._ready.set()

    def kill(self) -> None:
        """kill -9 the worker and every thread and child it has."""
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
            self.process = None

    def log_tail(self, lines: int = 60) -> str:
        return "".join(self.output[-lines:])


def worker_env(*, database_url: str, broker_url: str, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": broker_url,
        "PYTHONUNBUFFERED": "1",
    }
    env.update(extra)
    return env


@contextmanager
def running_worker(
    env: Mapping[str, str],
    *,
    threads: int = 8,
    queues: str = "pulls,verdicts,reports,celery",
    name: str = "test",
) -> Iterator[Worker]:
    worker = Worker(env, threads=threads, queues=queues, name=name)
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()


def send_task(broker_url: str, name: str, *, args: list | None = None, queue: str) -> None:
    """Send one task message to a broker, as beat or the web process would."""
    send_tasks(broker_url, [(name, args or [])], queue=queue)


def send_tasks(broker_url: str, tasks: list[tuple[str, list]], *, queue: str) -> None:
    # Celery lets CELERY_BROKER_URL (memory:// in the test process) override any broker
    # given to an app, so messages go through an explicit connection instead. The queues
    # are declared by the worker, which must be running.
    app = Celery("valuetree-test-client")
    with Connection(broker_url) as connection:
        for name, args in tasks:
            app.send_task(name, args=args, queue=queue, connection=connection)


def send_pulls(broker_url: str, metric_ids: list[int], trigger: str = "schedule") -> None:
    send_tasks(
        broker_url,
        [("outcomes.tasks.pull_metric", [metric_id, trigger]) for metric_id in metric_ids],
        queue="pulls",
    )


def database_url_of(connection) -> str:
    """The URL of the database pytest-django created, for the worker process."""
    settings = connection.settings_dict
    user = quote(settings["USER"] or "postgres", safe="")
    password = f":{quote(settings['PASSWORD'], safe='')}" if settings.get("PASSWORD") else ""
    host = settings["HOST"] or postgres.host()
    port = settings["PORT"] or postgres.port()
    return f"postgres://{user}{password}@{host}:{port}/{settings['NAME']}"
