"""config.sqlite: writers of the embedded database take turns before SQLite's lock.

Each test opens its own connections to a SQLite file in a temporary folder, with the
settings the service uses (IMMEDIATE transactions, WAL), whatever database the pass
runs on. A transaction is begun and ended as ``transaction.atomic`` does for SQLite.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.db.utils import OperationalError, load_backend

ROOT = Path(__file__).resolve().parents[2]


def open_database(path: Path, timeout: float = 20):
    backend = load_backend("config.sqlite")
    settings = {
        "ENGINE": "config.sqlite",
        "NAME": str(path),
        "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": timeout},
        "ATOMIC_REQUESTS": False,
        "AUTOCOMMIT": True,
        "CONN_MAX_AGE": 0,
        "CONN_HEALTH_CHECKS": False,
        "TIME_ZONE": None,
        "USER": "",
        "PASSWORD": "",
        "HOST": "",
        "PORT": "",
        "TEST": {},
    }
    connection = backend.DatabaseWrapper(settings, alias="turns")
    connection.inc_thread_sharing()  # opened here, used in a test's thread
    return connection


@contextmanager
def transaction(connection):
    """What transaction.atomic does on SQLite for an outermost block."""
    connection.set_autocommit(False, force_begin_transaction_with_broken_autocommit=True)
    try:
        yield connection
    except BaseException:
        connection.rollback()
        connection.set_autocommit(True)
        raise
    connection.commit()
    connection.set_autocommit(True)


def insert(connection, n: int) -> None:
    with transaction(connection), connection.cursor() as cursor:
        cursor.execute("INSERT INTO t (n) VALUES (%s)", [n])


def rows(path: Path) -> list[int]:
    reader = open_database(path)
    try:
        with reader.cursor() as cursor:
            cursor.execute("SELECT n FROM t ORDER BY n")
            return [n for (n,) in cursor.fetchall()]
    finally:
        reader.close()


@pytest.fixture(autouse=True)
def unblocked(django_db_blocker):
    """These connections are the test's own files, not the suite's test database."""
    with django_db_blocker.unblock():
        yield


@pytest.fixture
def database(tmp_path):
    path = tmp_path / "db.sqlite3"
    setup = open_database(path)
    with setup.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("CREATE TABLE t (n integer)")
    setup.close()
    return path


@pytest.fixture
def connect(database):
    opened = []

    def connect(timeout: float = 20):
        opened.append(open_database(database, timeout))
        return opened[-1]

    yield connect
    for connection in opened:
        connection.close()


def in_thread(work) -> tuple[threading.Thread, threading.Event, list[BaseException]]:
    done, errors = threading.Event(), []

    def run() -> None:
        try:
            work()
        except BaseException as error:  # noqa: BLE001 - the test asserts on it
            errors.append(error)
        done.set()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, done, errors


def test_a_writer_waits_for_the_turn_and_then_writes(database, connect):
    first, second = connect(), connect()
    with transaction(first), first.cursor() as cursor:
        cursor.execute("INSERT INTO t (n) VALUES (1)")
        thread, done, errors = in_thread(lambda: insert(second, 2))
        # The second writer cannot pass while the first holds the turn.
        assert not done.wait(0.3)
    thread.join(10)
    assert errors == []
    assert rows(database) == [1, 2]


def test_no_turn_within_the_busy_timeout_is_database_is_locked_and_writes_nothing(
    database, connect
):
    holder, impatient = connect(), connect(timeout=0.2)
    with transaction(holder), holder.cursor() as cursor:
        cursor.execute("INSERT INTO t (n) VALUES (1)")
        thread, _, errors = in_thread(lambda: insert(impatient, 2))
        thread.join(10)
    assert len(errors) == 1
    assert isinstance(errors[0], OperationalError)
    assert "database is locked" in str(errors[0])
    assert rows(database) == [1]
    # The refused writer kept no turn: it writes once the holder is done.
    insert(impatient, 3)
    assert rows(database) == [1, 3]


@pytest.mark.parametrize("ending", ["rollback", "close"])
def test_the_turn_ends_with_a_rollback_or_a_closed_connection(database, connect, ending):
    holder, other = connect(), connect(timeout=2)
    if ending == "rollback":
        with pytest.raises(ZeroDivisionError), transaction(holder), holder.cursor() as cursor:
            cursor.execute("INSERT INTO t (n) VALUES (1)")
            1 / 0  # noqa: B018
    else:
        holder.set_autocommit(False, force_begin_transaction_with_broken_autocommit=True)
        with holder.cursor() as cursor:
            cursor.execute("INSERT INTO t (n) VALUES (1)")
        holder.close()
    thread, _, errors = in_thread(lambda: insert(other, 2))
    thread.join(10)
    assert errors == []
    assert rows(database) == [2]


def test_writers_in_other_processes_wait_for_this_ones_turn(database, connect):
    """A process holding the turn keeps another process's writer out (flock)."""
    holder = connect()
    script = (
        "import django\n"
        "from django.conf import settings\n"
        "settings.configure(DATABASES={'default': {'ENGINE': 'config.sqlite',"
        f" 'NAME': {str(database)!r}, 'OPTIONS': {{'transaction_mode': 'IMMEDIATE',"
        " 'timeout': 0.3}}})\n"
        "django.setup()\n"
        "from django.db import connection, transaction\n"
        "try:\n"
        "    with transaction.atomic():\n"
        "        connection.cursor().execute('INSERT INTO t (n) VALUES (9)')\n"
        "except Exception as error:\n"
        "    print(type(error).__name__, error)\n"
        "else:\n"
        "    print('written')\n"
    )

    def other_process() -> str:
        return subprocess.run(
            [sys.executable, "-c", script],
            cwd=ROOT,
            env={k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"},
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout.strip()

    with transaction(holder), holder.cursor() as cursor:
        cursor.execute("INSERT INTO t (n) VALUES (1)")
        assert other_process() == "OperationalError database is locked"
    assert other_process() == "written"
    assert rows(database) == [1, 9]


def test_threads_of_one_process_queue_instead_of_failing(database, connect):
    """Eight threads each write twenty rows: every row is stored, no error."""
    writers = [connect(timeout=10) for _ in range(8)]
    started = [
        in_thread(lambda c=c, i=i: [insert(c, i * 100 + n) for n in range(20)])
        for i, c in enumerate(writers)
    ]
    for thread, _, _ in started:
        thread.join(60)
    assert [error for _, _, errors in started for error in errors] == []
    assert len(rows(database)) == 160


def test_the_turn_is_held_from_begin_to_commit(database, connect):
    """The process's queue and the flock beside the database are taken by BEGIN and
    given back by COMMIT, so other writers wait on them, not in SQLite's busy handler."""
    import fcntl

    from config.sqlite.base import _queue_for

    lock_file = Path(f"{os.path.realpath(database)}-writers.lock")

    def flocked_elsewhere() -> bool:
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False

    writer = connect()
    queue = _queue_for(str(database))
    with transaction(writer), writer.cursor() as cursor:
        cursor.execute("INSERT INTO t (n) VALUES (1)")
        assert queue.threads.locked()
        assert flocked_elsewhere()
    assert not queue.threads.locked()
    assert not flocked_elsewhere()
    assert rows(database) == [1]


def flocked_elsewhere(database: Path) -> bool:
    """Whether another open file description holds the flock beside the database."""
    import fcntl

    fd = os.open(f"{os.path.realpath(database)}-writers.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def test_a_connection_dropped_in_a_transaction_gives_its_turn_back(database, connect):
    """A thread that ends in a transaction without closing its connection (its
    thread-local connection is garbage) gave SQLite's lock back when the connection was
    collected; the turn must go with it, or every writer of every process waits forever."""
    import gc

    def abandon() -> None:
        dropped = open_database(database)
        dropped.set_autocommit(False, force_begin_transaction_with_broken_autocommit=True)
        dropped.cursor().execute("INSERT INTO t (n) VALUES (1)")

    thread = threading.Thread(target=abandon)
    thread.start()
    thread.join(10)
    gc.collect()
    insert(connect(timeout=2), 2)
    assert rows(database) == [2]
    assert not flocked_elsewhere(database)


def test_the_lock_file_gets_the_database_files_permissions(database, connect):
    """Like SQLite's -wal and -shm files: the web server and the worker may run as two
    users of one group, and a lock file only its creator may open fails every write of
    the other ("permission denied") where SQLite itself would have let it write."""
    os.chmod(database, 0o660)
    insert(connect(), 1)
    lock_file = Path(f"{os.path.realpath(database)}-writers.lock")
    assert oct(lock_file.stat().st_mode & 0o777) == oct(0o660)


def test_a_failed_commit_keeps_the_turn_until_the_rollback(database, connect):
    """A COMMIT refused by a deferred foreign key leaves the transaction open, holding
    SQLite's write lock: the turn is given back by the rollback that follows, not
    before, or the next writer would meet SQLite's busy handler again."""
    from django.db.utils import IntegrityError

    from config.sqlite.base import _queue_for

    writer = connect()
    with writer.cursor() as cursor:
        cursor.execute("CREATE TABLE parent (id integer PRIMARY KEY)")
        cursor.execute(
            "CREATE TABLE child (parent_id integer REFERENCES parent (id) "
            "DEFERRABLE INITIALLY DEFERRED)"
        )
    queue = _queue_for(str(database))
    writer.set_autocommit(False, force_begin_transaction_with_broken_autocommit=True)
    writer.cursor().execute("INSERT INTO child (parent_id) VALUES (7)")
    with pytest.raises(IntegrityError):
        writer.commit()
    assert writer.connection.in_transaction
    assert queue.threads.locked()
    assert flocked_elsewhere(database)
    writer.rollback()
    writer.set_autocommit(True)
    assert not queue.threads.locked()
    assert not flocked_elsewhere(database)


def test_a_forked_child_does_not_touch_its_parents_turn(database, connect):
    """A child forked while its parent holds a turn inherits the connection that holds
    it: ending that turn in the child (closing the connection, or collecting it) must
    neither fail on the lock file the child closed nor unlock a file it opened since."""
    holder = connect()
    with transaction(holder), holder.cursor() as cursor:
        cursor.execute("INSERT INTO t (n) VALUES (1)")
        pid = os.fork()
        if pid == 0:  # the child: report by exit status, never return into pytest
            code = 1
            try:
                holder._end_turn()
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        # The parent's turn is untouched.
        assert flocked_elsewhere(database)
    assert rows(database) == [1]


def test_a_failed_begin_gives_the_turn_back(database, connect):
    """A writer outside the queue (the sqlite3 shell) holds SQLite's lock: BEGIN fails
    with "database is locked" after the busy timeout, and the turn is not kept."""
    import sqlite3

    from config.sqlite.base import _queue_for

    outsider = sqlite3.connect(database, isolation_level=None)
    outsider.execute("BEGIN IMMEDIATE")
    impatient = connect(timeout=0.2)
    with pytest.raises(OperationalError, match="database is locked"):
        insert(impatient, 1)
    assert not _queue_for(str(database)).threads.locked()
    assert not flocked_elsewhere(database)
    outsider.execute("ROLLBACK")
    outsider.close()
    insert(impatient, 2)
    assert rows(database) == [2]


def test_nested_atomic_blocks_take_one_turn(database, connect):
    """Savepoints inside the outermost transaction neither take the turn again (the
    process lock is not re-entrant: that would wait for itself) nor give it back."""
    from config.sqlite.base import _queue_for

    writer = connect(timeout=1)
    queue = _queue_for(str(database))
    with transaction(writer), writer.cursor() as cursor:
        cursor.execute("INSERT INTO t (n) VALUES (1)")
        writer.in_atomic_block = True  # as atomic() has it: savepoints are allowed
        for n in (2, 3):
            sid = writer.savepoint()
            cursor.execute("INSERT INTO t (n) VALUES (%s)", [n])
            if n == 2:
                writer.savepoint_commit(sid)
            else:
                writer.savepoint_rollback(sid)
            assert queue.threads.locked()
        writer.in_atomic_block = False
    assert not queue.threads.locked()
    assert rows(database) == [1, 2]
