"""Engine and session factories (one engine per database URL per process)."""

from __future__ import annotations

import select
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

import psycopg
from psycopg.pq import ConnStatus
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DisconnectionError
from sqlmodel import Session, create_engine

from app.settings import get_settings


def is_sqlite(engine: Engine) -> bool:
    """Whether the engine talks to SQLite (which serialises writers itself)."""
    return engine.dialect.name == "sqlite"


@lru_cache(maxsize=8)
def engine_for(url: str) -> Engine:
    """Build (once) the engine for a URL, with SQLite tuned for concurrent web + job access."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            from pathlib import Path

            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=20,
            max_overflow=20,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # pragma: no cover - trivial
            # Let SQLAlchemy, not pysqlite, emit BEGIN so "BEGIN IMMEDIATE" can be used.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):  # pragma: no cover - trivial
            # Writing sessions queue on the database lock up front ("BEGIN IMMEDIATE")
            # instead of failing to upgrade a read lock half-way through a transaction.
            # Read-only sessions open no transaction at all: every statement sees the
            # latest committed data (as PostgreSQL's READ COMMITTED does) and never
            # holds a lock or an old snapshot.
            if conn.get_execution_options().get("sqlite_immediate"):
                conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    if parsed.get_driver_name() != "psycopg":  # another driver: a round trip per checkout
        return create_engine(url, pool_size=20, max_overflow=30, pool_pre_ping=True)
    engine = create_engine(url, pool_size=20, max_overflow=30)
    event.listen(engine, "checkout", _server_still_there)
    return engine


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


def new_session(*, write: bool = True) -> Session:
    """A new session on the configured database; the caller closes it.

    ``write=True`` (the default) makes SQLite take its write lock when the transaction
    begins, which serialises writers correctly. ``write=False`` is for reading: on SQLite
    each statement then runs on its own (do not rely on it for atomic writes).
    PostgreSQL ignores the flag.
    """
    engine = get_engine()
    if write and is_sqlite(engine):
        engine = engine.execution_options(sqlite_immediate=True)
    return Session(engine, expire_on_commit=False)


@contextmanager
def session_scope(*, write: bool = True) -> Iterator[Session]:
    """A session for jobs and scripts; rolls back on error, always closes."""
    session = new_session(write=write)
    try:
        yield session
    except Exception:
        session.rollback()
        raise
    finally:
        session.close()
