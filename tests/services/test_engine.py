"""The database engine: pooled PostgreSQL connections survive the server hanging up."""

from __future__ import annotations

import time

import psycopg
import pytest
from sqlalchemy import text

from app.db.engine import get_engine, new_session


def _backend_pid() -> int:
    session = new_session(write=True)
    try:
        return session.execute(text("SELECT pg_backend_pid()")).scalar_one()
    finally:
        session.close()  # back into the pool


def test_a_pooled_connection_the_server_closed_is_replaced(settings):
    """After a database restart (here: an administrator's terminate) the next request gets
    a working connection instead of an error, with no round trip per checkout."""
    if get_engine().dialect.name != "postgresql":
        pytest.skip("SQLite has no server to hang up")
    pid = _backend_pid()
    assert _backend_pid() == pid  # the same pooled connection is handed out again
    url = get_engine().url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as admin:  # not from the pool
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        for _ in range(100):
            [(left,)] = admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)
            ).fetchall()
            if not left:
                break
            time.sleep(0.02)
    assert not left
    fresh = _backend_pid()  # no error: the dead connection was dropped at checkout
    assert fresh != pid
