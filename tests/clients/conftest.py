"""Client tests: the real toloka-kit / Custom Vision SDKs against a live Crowdlab server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.browser.conftest import LiveServer
from tests.builders.users import make_requester, make_token


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/clients/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.clients)


@pytest.fixture
def jobs_live_server(settings, monkeypatch) -> Iterator[LiveServer]:
    """The app on a free port with a real in-process job consumer (jobs are not immediate).

    Requests that start a job return at once and the job runs in the consumer's threads,
    as in production, so clients see ``queued``/``running`` states and poll.
    """
    from app.main import create_app
    from app.settings import get_settings
    from workers.queue import get_huey

    monkeypatch.setenv("CROWDLAB_JOBS_IMMEDIATE", "false")
    get_settings.cache_clear()
    get_huey.cache_clear()
    server = LiveServer(create_app(start_jobs=True)).start()
    yield server
    server.stop()


@pytest.fixture
def toloka_server(app) -> Iterator[LiveServer]:
    """The app (fresh database, jobs run inside the request) on a free local port."""
    server = LiveServer(app).start()
    yield server
    server.stop()


@pytest.fixture
def funded(session):
    """A requester with $50 and an API token."""
    from app.services.money import ledger

    requester = make_requester(session, name="Vision Lab")
    ledger.top_up(session, user=requester, amount_cents=5000)
    return requester, make_token(session, requester)
