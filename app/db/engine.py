"""Engine and session factories (one engine per database URL per process)."""

from __future__ import annotations

import select
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

import psycopg
from psycopg.pq import ConnStatus
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlmodel import Session, create_engine

from app.db import sqlite_writers
from app.settings import get_settings


def is_sqlite(engine: Engine) -> bool:
    """Whether the engine talks to SQLite (which serialises writers itself)."""
    return engine.dialect.name == "sqlite"


@lru_cache(maxsize=8)
def engine_for(url: str) -> Engine:
    """Build (once) the engine for a URL, with SQLite tuned for concurrent web + job access."""
    settings = get_settings()
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            from pathlib import Path

            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        busy_ms = settings.sqlite_busy_timeout_ms
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": busy_ms / 1000},
            pool_size=20,
            max_overflow=20,
            pool_timeout=settings.db_pool_timeout_s,
        )

        sqlite_writers.install(engine, busy_ms=busy_ms)
        return engine
    pool_options = {"pool_size": 20, "max_overflow": 30, "pool_timeout": settings.db_pool_timeout_s}
    connect_args = _pg_connect_args(parsed.query, settings)
    if parsed.get_driver_name() != "psycopg":  # another driver: a round trip per checkout
        return create_engine(url, pool_pre_ping=True, **pool_options)
    engine = create_engine(url, connect_args=connect_args, **pool_options)
    event.listen(engine, "checkout", _server_still_there)
    event.listen(engine, "begin", _pg_job_statement_timeout)
    return engine


def _pg_connect_args(query, settings) -> dict:
    """libpq options bounding every wait: connect, each statement, a silent network.

    Options given in the database URL win."""
    args: dict = {
        "connect_timeout": settings.db_connect_timeout_s,
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 5,
        "keepalives_count": 3,
    }
    if settings.db_tcp_user_timeout_ms:
        args["tcp_user_timeout"] = settings.db_tcp_user_timeout_ms
    if settings.db_statement_timeout_ms and "options" not in query:
        args["options"] = f"-c statement_timeout={settings.db_statement_timeout_ms}"
    return {key: value for key, value in args.items() if key not in query}


def _pg_job_statement_timeout(conn) -> None:
    """Jobs run long statements (imports, aggregation): their transactions get the job
    limit instead of the web one."""
    timeout = conn.get_execution_options().get("statement_timeout_ms")
    if timeout is not None:
        conn.exec_driver_sql(f"SET LOCAL statement_timeout = {int(timeout)}")


def is_busy_error(exc: BaseException) -> bool:
    """Whether a database error means "busy or unreachable, try again" (503), not a bug:
    SQLite's lock wait ran out, a PostgreSQL statement or lock timeout, a lost or refused
    connection, or no pooled connection free within the pool timeout."""
    if isinstance(exc, PoolTimeout):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    orig = exc.orig
    if isinstance(orig, psycopg.OperationalError):
        return True
    if isinstance(orig, sqlite3.OperationalError):
        text = str(orig).lower()
        return "locked" in text or "busy" in text
    return False


def _server_still_there(dbapi_connection, _record, _proxy) -> None:
    """Hand out a pooled PostgreSQL connection only if the server has not hung up on it.

    An idle connection has nothing to read unless the server said goodbye (a restart, an
    administrator's terminate) or closed the socket, so a zero-timeout poll of the socket
    finds a dead one without a round trip (``pool_pre_ping`` sends a query every time).
    ``DisconnectionError`` makes the pool drop it and connect afresh."""
    pgconn = dbapi_connection.pgconn
    try:
        if hasattr(select, "poll"):
            poller = select.poll()
            poller.register(pgconn.socket, select.POLLIN)
            unread = bool(poller.poll(0))
        else:  # pragma: no cover - Windows
            unread = bool(select.select([pgconn.socket], [], [], 0)[0])
    except (OSError, ValueError, psycopg.Error):
        unread = True
    if unread or pgconn.status != ConnStatus.OK:
        raise DisconnectionError("The database server closed this connection.")


# PostgreSQL plans the labeling queries from table statistics; after a bulk insert they
# say "a few thousand tasks" until autovacuum gets round to it (a minute or more), and in
# the meantime every suite lookup scans the whole task table.
BULK_ROWS = 1000


def refresh_statistics(session: Session, *, table: str, rows: int) -> None:
    """``ANALYZE`` a table on PostgreSQL after ``rows`` (at least ``BULK_ROWS``) were added
    and committed; SQLite, and smaller writes, need nothing."""
    if rows < BULK_ROWS or is_sqlite(session.get_bind()):
        return
    session.connection().exec_driver_sql(f'ANALYZE "{table}"')
    session.commit()


def get_engine() -> Engine:
    """The engine for the configured database."""
    return engine_for(get_settings().resolved_database_url)


def new_session(*, write: bool = True, lazy: bool = False) -> Session:
    """A new session on the configured database; the caller closes it.

    ``write=True`` (the default) makes SQLite take its write lock when the transaction
    begins, which serialises writers correctly. ``write=False`` is for reading: on SQLite
    each statement then runs on its own (do not rely on it for atomic writes).
    ``lazy=True`` (with ``write``) reads like ``write=False`` and takes the write lock at
    the first INSERT/UPDATE/DELETE: for requests that normally only read (GET pages), so
    they never wait behind a writer; what they write after that point is atomic, what
    they read before it is not locked. PostgreSQL ignores the flags.
    """
    engine = get_engine()
    if write and is_sqlite(engine):
        option = "sqlite_lazy_write" if lazy else "sqlite_immediate"
        engine = engine.execution_options(**{option: True})
    return Session(engine, expire_on_commit=False)


def write_from_next_transaction(session: Session) -> None:
    """End the session's current (reading) transaction; its next one takes SQLite's write
    lock when it begins. For a request whose authentication only reads: the lock is then
    not held from one worker-thread hop (a dependency) to the next (the route), where
    the thread pool may be full of requests queueing for that very lock."""
    engine = get_engine()
    if is_sqlite(engine):  # PostgreSQL locks rows, not the database: nothing to do
        session.commit()
        session.bind = engine.execution_options(sqlite_immediate=True)


@contextmanager
def session_scope(*, write: bool = True) -> Iterator[Session]:
    """A session for jobs and scripts; rolls back on error, always closes.

    On PostgreSQL its transactions run under the job statement timeout (longer than the
    web one)."""
    session = new_session(write=write)
    engine = session.get_bind()
    if not is_sqlite(engine):
        timeout = get_settings().db_job_statement_timeout_ms
        session.bind = engine.execution_options(statement_timeout_ms=timeout)
    try:
        yield session
    except Exception:
        session.rollback()
        raise
    finally:
        session.close()
