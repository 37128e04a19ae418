"""SQLite's one writer, handed over without waiting: transactions, locks and a gate.

SQLite lets one connection write at a time; a connection that finds the lock taken
sleeps in its busy handler (1, 2, 5 … 100 ms between tries), so under load the lock is
often free while every waiter sleeps, and a writer can lose the race again and again.
Within one process (web threads and in-process jobs) writers therefore first queue on
a gate, a ``threading.Lock`` held from ``BEGIN IMMEDIATE`` to ``COMMIT``/``ROLLBACK``,
which hands the database over the moment it is free. Between processes (several web
processes, the job worker, the CLI) the gate's holder then takes an exclusive ``flock``
on ``<database>-writer.lock``, tried every 2 ms: one waiter per process, and a waiting
request is in as soon as an import's batch ends instead of after its busy handler's next
100 ms nap. SQLite's busy timeout still covers anything else that opens the file.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

WRITE_VERBS = ("INSERT", "UPDATE", "DELETE", "REPLACE")
_HELD = "crowdlab_writer_gate"
_this_thread = threading.local()  # how many write transactions this thread holds open


def writing_here() -> bool:
    """Whether this thread holds SQLite's write lock in an open transaction: a write on
    another connection from this thread would wait for itself."""
    return getattr(_this_thread, "held", 0) > 0


class _ProcessLock:
    """An exclusive ``flock`` on a file beside the database, shared by every process that
    writes it through Crowdlab (none for an in-memory database or without ``fcntl``)."""

    POLL_S = 0.002

    def __init__(self, database: str | None) -> None:
        self._fd = None
        if database and database != ":memory:" and not database.startswith("file::memory"):
            try:
                import fcntl
            except ImportError:  # pragma: no cover - not on POSIX
                return
            self._fcntl = fcntl
            self._path = f"{database}-writer.lock"

    def acquire(self, timeout: float) -> bool:
        if not hasattr(self, "_path"):
            return True
        if self._fd is None or self._pid != os.getpid():
            self._fd, self._pid = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600), os.getpid()
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._fcntl.flock(self._fd, self._fcntl.LOCK_EX | self._fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(self.POLL_S)

    def release(self) -> None:
        if self._fd is not None:
            self._fcntl.flock(self._fd, self._fcntl.LOCK_UN)


def install(engine: Engine, *, busy_ms: int) -> None:
    """Set SQLite up for concurrent web + job access on ``engine``."""
    gate = threading.Lock()
    between_processes = _ProcessLock(engine.url.database)
    wait_s = busy_ms / 1000

    def begin_immediate(info: dict, cursor) -> None:
        if not info.get(_HELD):
            started = time.monotonic()
            if not gate.acquire(timeout=wait_s):
                busy = sqlite3.OperationalError("database is locked (other writers first)")
                raise OperationalError("BEGIN IMMEDIATE", None, busy)
            if not between_processes.acquire(max(0.0, wait_s - (time.monotonic() - started))):
                gate.release()
                busy = sqlite3.OperationalError("database is locked (another process writes)")
                raise OperationalError("BEGIN IMMEDIATE", None, busy)
            info[_HELD] = True
            _this_thread.held = getattr(_this_thread, "held", 0) + 1
        try:
            cursor.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            release(info)
            raise OperationalError("BEGIN IMMEDIATE", None, exc) from exc
        except BaseException:
            release(info)
            raise

    def release(info: dict) -> None:
        if info.pop(_HELD, False):
            _this_thread.held = max(0, getattr(_this_thread, "held", 0) - 1)
            try:
                between_processes.release()
            finally:
                gate.release()

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection, _record):  # pragma: no cover - trivial
        # Let SQLAlchemy, not pysqlite, emit BEGIN so "BEGIN IMMEDIATE" can be used.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):
        # Writing sessions queue on the database lock up front ("BEGIN IMMEDIATE")
        # instead of failing to upgrade a read lock half-way through a transaction.
        # Read-only sessions open no transaction at all: every statement sees the
        # latest committed data (as PostgreSQL's READ COMMITTED does) and never
        # holds a lock or an old snapshot.
        if conn.get_execution_options().get("sqlite_immediate"):
            begin_immediate(conn.info, conn.connection.dbapi_connection.cursor())

    @event.listens_for(engine, "before_cursor_execute")
    def _lazy_write(conn, cursor, statement, _params, _context, _many):
        # "Lazy" sessions (GET pages, media) read without any lock, like read-only
        # ones, and take the write lock only at their first write statement, so a
        # page never queues behind an import or another writer just to read.
        if (
            conn.get_execution_options().get("sqlite_lazy_write")
            and not cursor.connection.in_transaction
            and statement.lstrip()[:7].upper().startswith(WRITE_VERBS)
        ):
            begin_immediate(conn.info, cursor)

    # SQLAlchemy's commit/rollback events fire before the DBAPI call; finish the
    # transaction here so the gate opens only once SQLite's lock is really free (the
    # DBAPI call that follows then finds no transaction and does nothing).
    @event.listens_for(engine, "commit")
    def _commit(conn):
        if conn.info.get(_HELD):
            try:
                conn.connection.dbapi_connection.commit()
            finally:
                release(conn.info)

    @event.listens_for(engine, "rollback")
    def _rollback(conn):
        if conn.info.get(_HELD):
            try:
                conn.connection.dbapi_connection.rollback()
            finally:
                release(conn.info)

    @event.listens_for(engine, "reset")
    def _reset(dbapi_connection, record, _state):  # back to the pool, or dropped
        if record is not None and record.info.get(_HELD):
            try:
                dbapi_connection.rollback()
            finally:
                release(record.info)

    @event.listens_for(engine, "close")
    def _close(_dbapi_connection, record):
        if record is not None:
            release(record.info)

    @event.listens_for(engine, "invalidate")
    def _invalidate(_dbapi_connection, record, _exc):
        if record is not None:
            release(record.info)
