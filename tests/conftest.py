"""Test set-up: a fresh database per test (SQLite file, or PostgreSQL truncated), jobs
run immediately, a TestClient on the app.

Why not one rolled-back transaction per test: jobs, live servers, browser tests and the
concurrency tests all need real commits seen by other connections. A migrated template
database is copied per test on SQLite; PostgreSQL tables are truncated after each test.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session, SQLModel

from tests.builders.users import login, make_labeler, make_requester, make_token

PG_URL = os.environ.get("CROWDLAB_TEST_DATABASE_URL")


def _worker_suffix() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "gw")


def _clear_caches() -> None:
    from app.security import _hasher
    from app.services.figures_cache import page_figures
    from app.settings import get_settings
    from app.web.templating import get_templates
    from workers.queue import get_huey

    get_settings.cache_clear()
    get_huey.cache_clear()
    _hasher.cache_clear()
    get_templates.cache_clear()
    page_figures.clear()


def _pg_worker_url() -> str:
    url = sa.make_url(PG_URL)
    name = f"{url.database}_{_worker_suffix()}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.exec_driver_sql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'").first()
        if not exists:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def database_template(tmp_path_factory) -> str:
    """Migrate once per test session: a template SQLite file, or the worker's PG database."""
    from app.db.migrate import upgrade

    os.environ["CROWDLAB_DATA_DIR"] = str(tmp_path_factory.mktemp("boot"))
    _clear_caches()
    if PG_URL:
        url = _pg_worker_url()
        engine = sa.create_engine(url)
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        engine.dispose()
        upgrade(url)
        return url
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return str(path)


@pytest.fixture(autouse=True)
def settings(database_template, tmp_path, monkeypatch):
    """Settings for one test: its own data dir and a clean database; jobs run at once."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    if PG_URL:
        url = database_template
    else:
        db_file = tmp_path / "crowdlab.db"
        shutil.copyfile(database_template, db_file)
        url = f"sqlite:///{db_file}"
    env = {
        "CROWDLAB_DATA_DIR": str(data_dir),
        "CROWDLAB_DATABASE_URL": url,
        "CROWDLAB_JOBS_IMMEDIATE": "true",
        "CROWDLAB_SHOW_TEST_ARCHITECTURES": "true",
        "CROWDLAB_JOBS_IN_PROCESS": "false",
        "CROWDLAB_SECRET_KEY": "test-secret-key",
        "CROWDLAB_ARGON2_TIME_COST": "1",
        "CROWDLAB_ARGON2_MEMORY_COST": "8192",
        # Tests serve images from their own live server on 127.0.0.1.
        "CROWDLAB_ALLOW_PRIVATE_IMAGE_URLS": "true",
        # Task TSVs name made-up URLs; the tests of the URL check turn it on.
        "CROWDLAB_CHECK_IMAGE_URLS": "false",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    _clear_caches()
    from app.settings import get_settings

    yield get_settings()
    from app.db.engine import engine_for

    engine = engine_for(url)
    if PG_URL:
        tables = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
        with engine.begin() as conn:
            conn.exec_driver_sql(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    engine.dispose()
    if not PG_URL:
        engine_for.cache_clear()
    _clear_caches()


@pytest.fixture
def session(settings) -> Iterator[Session]:
    """A session on the test database (reads never block the app's writers)."""
    from app.db.engine import new_session

    s = new_session(write=False)
    yield s
    s.close()


@pytest.fixture
def app(settings):
    from app.main import create_app

    return create_app(start_jobs=False)


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    """An anonymous browser-like client."""
    with TestClient(app) as c:
        yield c


@pytest.fixture
def make_client(app):
    """Factory for extra clients (several users at once)."""
    clients: list[TestClient] = []

    def factory() -> TestClient:
        c = TestClient(app)
        c.__enter__()
        clients.append(c)
        return c

    yield factory
    for c in clients:
        c.__exit__(None, None, None)


@pytest.fixture
def requester(session):
    return make_requester(session)


@pytest.fixture
def labeler(session):
    return make_labeler(session)


@pytest.fixture
def requester_client(make_client, requester) -> TestClient:
    """A client logged in as ``requester`` (sends the CSRF header on posts)."""
    return login(make_client(), requester)


@pytest.fixture
def labeler_client(make_client, labeler) -> TestClient:
    """A client logged in as ``labeler``."""
    return login(make_client(), labeler)


@pytest.fixture
def requester_api(make_client, session, requester) -> TestClient:
    """A client that sends the requester's API token."""
    c = make_client()
    c.headers["Authorization"] = f"OAuth {make_token(session, requester)}"
    return c


@pytest.fixture
def labeler_api(make_client, session, labeler) -> TestClient:
    c = make_client()
    c.headers["Authorization"] = f"OAuth {make_token(session, labeler)}"
    return c


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent
