"""A busy or stuck database: pages keep answering, writers get a quick 503, never a hang."""

from __future__ import annotations

import time
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

from app.db.engine import engine_for, get_engine
from app.deps import SessionDep


def _rebuild_engine() -> None:
    from app.settings import get_settings

    get_engine().dispose()
    get_settings.cache_clear()
    engine_for.cache_clear()


@pytest.fixture
def reconfigure(settings, monkeypatch):
    """Rebuild settings and the engine with extra ``CROWDLAB_*`` values; back after."""
    names: list[str] = []

    def apply(**env) -> None:
        for key, value in env.items():
            names.append(f"CROWDLAB_{key.upper()}")
            monkeypatch.setenv(names[-1], str(value))
        _rebuild_engine()

    yield apply
    for name in names:
        monkeypatch.delenv(name, raising=False)
    _rebuild_engine()


@pytest.fixture
def sqlite_only():
    if get_engine().dialect.name != "sqlite":
        pytest.skip("SQLite's single write lock")


@pytest.fixture
def postgres_only():
    if get_engine().dialect.name != "postgresql":
        pytest.skip("PostgreSQL server-side timeouts")


@contextmanager
def _hold_write_lock():
    """Another connection holds SQLite's write lock and has written (a long import would)."""
    from app.settings import get_settings

    holder = sa.create_engine(get_settings().resolved_database_url)
    conn = holder.raw_connection()
    raw = conn.driver_connection
    raw.isolation_level = None
    raw.execute("BEGIN IMMEDIATE")
    raw.execute("UPDATE user_account SET email = email")
    try:
        yield
    finally:
        raw.execute("ROLLBACK")
        conn.close()
        holder.dispose()


def _timed(call):
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def test_pages_answer_while_another_connection_holds_the_write_lock(
    sqlite_only, reconfigure, labeler_client, requester_client
):
    # A writer would wait 3 s for the lock and then fail; a page does not wait at all
    # (the bound below leaves room for a loaded test machine).
    reconfigure(sqlite_busy_timeout_ms=3000)
    pages = ((labeler_client, "/labeler"), (requester_client, "/requester"))
    for client, path in pages:  # templates compiled, connections open
        assert client.get(path, follow_redirects=False).status_code == 200
    with _hold_write_lock():
        for client, path in pages:
            response, took = _timed(lambda c=client, p=path: c.get(p, follow_redirects=False))
            assert response.status_code == 200, (path, response.status_code)
            assert took < 1.5, (path, took)


def test_a_writer_that_cannot_get_the_lock_gets_a_quick_503(
    sqlite_only, reconfigure, labeler_client, labeler_api
):
    reconfigure(sqlite_busy_timeout_ms=300)
    with _hold_write_lock():
        response, took = _timed(
            lambda: labeler_client.post("/labeler/pools/1/take", follow_redirects=False)
        )
        assert response.status_code == 503
        assert "busy" in response.text
        assert response.headers["Retry-After"]
        assert took < 2.0
        response, took = _timed(lambda: labeler_api.post("/api/v1/labeler/pools/1/suites"))
        assert response.status_code == 503
        assert response.json()["code"] == "DATABASE_BUSY"
        assert took < 2.0
    # Once the lock is free the same request works again (no restart).
    response = labeler_client.post("/labeler/pools/1/take", follow_redirects=False)
    assert response.status_code == 303


def test_a_statement_past_the_statement_timeout_gives_503_not_a_hang(
    postgres_only, reconfigure, app, requester_api
):
    reconfigure(db_statement_timeout_ms=300)

    @app.get("/api/zz-test-slow")
    def slow(session: SessionDep):
        session.exec(sa.text("SELECT pg_sleep(5)"))
        return {}

    response, took = _timed(lambda: requester_api.get("/api/zz-test-slow"))
    assert response.status_code == 503
    assert response.json()["code"] == "DATABASE_BUSY"
    assert response.headers["Retry-After"]
    assert took < 2.0
    assert requester_api.get("/api/v1/pools").status_code == 200  # recovered


def test_an_exhausted_pool_gives_503_within_the_pool_timeout(reconfigure, app, requester_api):
    reconfigure(db_pool_timeout_s=0.3)
    engine = get_engine()
    held = [engine.connect() for _ in range(engine.pool.size() + engine.pool._max_overflow)]
    try:
        response, took = _timed(lambda: requester_api.get("/api/v1/pools"))
        assert response.status_code == 503
        assert response.json()["code"] == "DATABASE_BUSY"
        assert took < 2.0
    finally:
        for conn in held:
            conn.close()
    assert requester_api.get("/api/v1/pools").status_code == 200


def test_postgres_connections_give_up_on_a_silent_server(settings):
    """Connect timeout, keepalives and a TCP user timeout, so a black-holed connection
    fails within seconds instead of hanging a request; the URL's own options win."""
    from app.db.engine import _pg_connect_args

    args = _pg_connect_args({}, settings)
    assert args["connect_timeout"] == 5
    assert args["keepalives"] == 1 and args["tcp_user_timeout"] == 20_000
    assert args["options"] == "-c statement_timeout=30000"
    assert "connect_timeout" not in _pg_connect_args({"connect_timeout": "2"}, settings)


def test_jobs_get_the_longer_statement_timeout(postgres_only):
    from app.db.engine import new_session, session_scope

    with session_scope() as job_session:
        assert job_session.exec(sa.text("SHOW statement_timeout")).one()[0] == "10min"
    web_session = new_session()
    try:
        assert web_session.exec(sa.text("SHOW statement_timeout")).one()[0] == "30s"
    finally:
        web_session.close()
