"""Redis (the shared log-in counters) down: log-ins keep working and stay throttled, counted
in the server process until Redis answers again (never a 500)."""

from __future__ import annotations

import socket

import pytest

from tests.builders.users import PASSWORD, csrf_of


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens there once the socket is closed


@pytest.fixture
def app_without_redis(settings, monkeypatch):
    from app.main import create_app
    from app.settings import get_settings
    from workers.queue import get_huey

    monkeypatch.setenv("CROWDLAB_REDIS_URL", f"redis://127.0.0.1:{_closed_port()}/0")
    get_settings.cache_clear()
    get_huey.cache_clear()
    yield create_app(start_jobs=False)
    get_settings.cache_clear()
    get_huey.cache_clear()


def _login(client, email: str, password: str):
    token = csrf_of(client)
    return client.post("/login", data={"email": email, "password": password,
                                       "csrf_token": token}, follow_redirects=False)  # fmt: skip


def test_log_in_works_and_is_still_throttled_while_redis_is_down(app_without_redis, requester):
    from fastapi.testclient import TestClient

    with TestClient(app_without_redis) as client:
        assert _login(client, requester.email, PASSWORD).status_code == 303
    with TestClient(app_without_redis) as attacker:
        statuses = [_login(attacker, requester.email, f"guess {n}").status_code for n in range(11)]
        assert statuses == [401] * 10 + [429]
        refused = _login(attacker, requester.email, PASSWORD)
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
