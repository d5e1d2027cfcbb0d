"""The embedded default's SQLite backend: writers take turns in a queue instead of
polling SQLite's busy handler.

Every transaction on the embedded database begins with ``BEGIN IMMEDIATE`` (settings),
so it takes SQLite's one write lock first. A writer that finds the lock taken waits in
SQLite's busy handler (``sqlite3_busy_timeout``, https://sqlite.org/c3ref/busy_timeout.html),
which sleeps 1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50 and then 100 ms between tries: a
writer that has already waited polls every 100 ms while a newcomer polls every
millisecond, so under steady writes a few wait for seconds while most pass at once
(``bench/load.py``, 16 clients on 2 × 8 gunicorn threads: push p50 0.17 s, p99 2.6 s).

Here a writer first takes its turn, in two steps, before it asks SQLite for the lock:

1. the threads of one process wait on a lock of that process (woken when it is
   released, not polling);
2. the one writer of each process that holds it takes an exclusive ``flock(2)`` on
   ``<database>-writers.lock`` beside the database, trying every millisecond, so the
   processes (gunicorn workers, the Celery worker) meet on equal terms.

The turn is held from ``BEGIN`` to ``COMMIT`` or ``ROLLBACK`` of the outermost
transaction, or until the connection closes; the kernel drops a dead process's flock.
Writers that do not use this backend (the ``sqlite3`` shell, an autocommitted write
outside a transaction) still meet SQLite's busy handler, as before.

Raises ``django.db.utils.OperationalError`` ("database is locked") when the turn does
not come within the busy timeout (``OPTIONS["timeout"]``, seconds), as SQLite would.
In-memory databases (the SQLite test pass) have no other writer process and skip it.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from dataclasses import dataclass, field

from django.db.backends.sqlite3 import base
from django.db.utils import OperationalError

POLL_SECONDS = 0.001


@dataclass
class _Queue:
    """One database file's turn in this process: the threads' lock and the lock file."""

    path: str
    threads: threading.Lock = field(default_factory=threading.Lock)
    fd: int | None = None

    def take(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        if not self.threads.acquire(timeout=timeout):
            raise OperationalError("database is locked")
        try:
            if self.fd is None:
                self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            while True:
                try:
                    fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise OperationalError("database is locked") from None
                    time.sleep(POLL_SECONDS)
        except BaseException:
            self.threads.release()
            raise

    def give(self) -> None:
        try:
            if self.fd is not None:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
        finally:
            self.threads.release()


_queues: dict[str, _Queue] = {}
_queues_lock = threading.Lock()


def _queue_for(database: str) -> _Queue:
    path = os.path.realpath(database) + "-writers.lock"
    with _queues_lock:
        if path not in _queues:
            _queues[path] = _Queue(path)
        return _queues[path]


def _forget_queues() -> None:
    # A forked child (a gunicorn worker) shares its parent's open lock files, and with
    # them their flocks: it opens its own, and starts with no writer in flight.
    global _queues_lock
    for queue in _queues.values():
        if queue.fd is not None:
            os.close(queue.fd)
    _queues.clear()
    _queues_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_queues)


class DatabaseWrapper(base.DatabaseWrapper):
    """Django's SQLite wrapper whose outermost transactions wait for their turn."""

    _turn: _Queue | None = None

    def _start_transaction_under_autocommit(self) -> None:
        if self._turn is None and not self.is_in_memory_db():
            queue = _queue_for(self.settings_dict["NAME"])
            queue.take(float(self.settings_dict["OPTIONS"].get("timeout", 5)))
            self._turn = queue
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            self._end_turn()
            raise

    def _end_turn(self) -> None:
        turn, self._turn = self._turn, None
        if turn is not None:
            turn.give()

    def _commit(self) -> None:
        try:
            super()._commit()
        finally:
            self._end_turn()

    def _rollback(self) -> None:
        try:
            super()._rollback()
        finally:
            self._end_turn()

    def _close(self) -> None:
        try:
            super()._close()
        finally:
            self._end_turn()
