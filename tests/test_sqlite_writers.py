"""SQLite writers of several processes take turns through a lock file beside the database."""

from __future__ import annotations

import multiprocessing
import time

import pytest
import sqlalchemy as sa

from app.db.engine import is_sqlite


def _write_while_holding(url: str, hold_s: float, started) -> None:
    from app.db.engine import engine_for

    engine = engine_for(url)
    with engine.connect().execution_options(sqlite_immediate=True) as conn:
        conn.begin()
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS t (x INTEGER)")
        conn.exec_driver_sql("INSERT INTO t VALUES (1)")
        started.set()
        time.sleep(hold_s)
        conn.commit()


def test_a_writer_in_another_process_waits_for_the_lock_then_writes(settings):
    from app.db.engine import engine_for

    engine = engine_for(settings.database_url)
    if not is_sqlite(engine):
        pytest.skip("SQLite's one writer")
    context = multiprocessing.get_context("spawn")
    started = context.Event()
    other = context.Process(target=_write_while_holding, args=(settings.database_url, 1.0, started))
    other.start()
    try:
        assert started.wait(60)
        begun = time.monotonic()
        with engine.connect().execution_options(sqlite_immediate=True) as conn:
            conn.begin()
            waited = time.monotonic() - begun
            conn.exec_driver_sql("INSERT INTO t VALUES (2)")
            conn.commit()
        assert 0.5 < waited < 5  # in as soon as the other process committed
        with engine.connect() as conn:
            assert sorted(conn.execute(sa.text("SELECT x FROM t")).scalars()) == [1, 2]
    finally:
        other.join(30)
    assert other.exitcode == 0
