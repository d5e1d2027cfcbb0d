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

The turn is held from ``BEGIN`` until the outermost transaction ends (a ``COMMIT``
that fails leaves it open until the ``ROLLBACK``), or until the connection closes or is
garbage-collected (a thread that ended in a transaction); the kernel drops a dead
process's flock. A forked child never ends a turn its parent holds. The lock file gets
the database file's permissions (and owner, when run as root), as SQLite's -wal file
does, so that processes of different users of one group can all write.
Writers that do not use this backend (the ``sqlite3`` shell, an autocommitted write
outside a transaction) still meet SQLite's busy handler, as before.

Raises ``django.db.utils.OperationalError`` ("database is locked") when the turn does
not come within the busy timeout (``OPTIONS["timeout"]``, seconds), as SQLite would.
In-memory databases (the SQLite test pass) have no other writer process and skip it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import threading
import time
import weakref
from dataclasses import dataclass, field

from django.db.backends.sqlite3 import base
from django.db.utils import OperationalError

POLL_SECONDS = 0.001


@dataclass
class _Queue:
    """One database file's turn in this process: the threads' lock and the lock file."""

    path: str
    database: str
    threads: threading.Lock = field(default_factory=threading.Lock)
    fd: int | None = None
    pid: int = field(default_factory=os.getpid)

    def take(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        if not self.threads.acquire(timeout=timeout):
            raise OperationalError("database is locked")
        try:
            if self.fd is None:
                self.fd = self._open()
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
        if self.pid != os.getpid():
            # Inherited through fork: the parent's turn, and a lock file the child
            # closed (its number may since name another file of the child's).
            return
        try:
            if self.fd is not None:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
        finally:
            self.threads.release()

    def _open(self) -> int:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)  # SQLite's default
        except OSError as error:
            raise OperationalError(
                f"cannot open the writers' lock file {self.path}: {error.strerror}"
            ) from None
        try:
            database, lock = os.stat(self.database), os.fstat(fd)
        except FileNotFoundError:
            return fd  # no database file yet: SQLite creates it with the default mode
        # SQLite gives its -wal and -shm files the database's mode (and owner, as root).
        # Not the lock file's owner (another user's process made it): keep its mode.
        with contextlib.suppress(PermissionError):
            if stat.S_IMODE(lock.st_mode) != stat.S_IMODE(database.st_mode):
                os.fchmod(fd, stat.S_IMODE(database.st_mode))
            if os.geteuid() == 0 and (lock.st_uid, lock.st_gid) != (
                database.st_uid,
                database.st_gid,
            ):
                os.fchown(fd, database.st_uid, database.st_gid)
        return fd


_queues: dict[str, _Queue] = {}
_queues_lock = threading.Lock()


def _queue_for(database: str) -> _Queue:
    real = os.path.realpath(database)
    path = real + "-writers.lock"
    with _queues_lock:
        if path not in _queues:
            _queues[path] = _Queue(path, real)
        return _queues[path]


def _forget_queues() -> None:
    # A forked child (a gunicorn worker) shares its parent's open lock files, and with
    # them their flocks: it opens its own, and starts with no writer in flight.
    global _queues_lock
    # Connections inherited with a turn hold the old queue, which gives nothing back
    # here (_Queue.give).
    for queue in _queues.values():
        if queue.fd is not None:
            os.close(queue.fd)
            queue.fd = None
    _queues.clear()
    _queues_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_queues)


class DatabaseWrapper(base.DatabaseWrapper):
    """Django's SQLite wrapper whose outermost transactions wait for their turn."""

    _turn: _Queue | None = None
    _turn_finalizer: weakref.finalize | None = None

    def _start_transaction_under_autocommit(self) -> None:
        if self._turn is not None and self._turn.pid != os.getpid():
            self._end_turn()  # a turn inherited through fork is the parent's
        if self._turn is None and not self.is_in_memory_db():
            queue = _queue_for(self.settings_dict["NAME"])
            queue.take(float(self.settings_dict["OPTIONS"].get("timeout", 5)))
            self._turn = queue
            # A connection dropped in a transaction (its thread ended) is closed by the
            # garbage collector, which gives SQLite's lock back: give the turn with it.
            self._turn_finalizer = weakref.finalize(self, queue.give)
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            self._end_turn()
            raise

    def _end_turn(self) -> None:
        finalizer, self._turn_finalizer, self._turn = self._turn_finalizer, None, None
        if finalizer is not None:
            finalizer()  # gives the turn, once

    def _end_turn_unless_in_transaction(self) -> None:
        # A COMMIT that fails (a deferred foreign key) leaves the transaction, and
        # SQLite's write lock, in place: the turn goes with the ROLLBACK that follows.
        if self.connection is None or not self.connection.in_transaction:
            self._end_turn()

    def _commit(self) -> None:
        try:
            super()._commit()
        finally:
            self._end_turn_unless_in_transaction()

    def _rollback(self) -> None:
        try:
            super()._rollback()
        finally:
            self._end_turn_unless_in_transaction()

    def _close(self) -> None:
        try:
            super()._close()
        finally:
            self._end_turn()
