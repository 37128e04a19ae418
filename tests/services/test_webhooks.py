"""Webhook deliveries: exponential backoff, give up after the last attempt, guard."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from app.db.models import WebhookDelivery, WebhookSubscription
from app.errors import ValidationFailed
from app.services.webhooks import delivery, subscriptions
from tests.builders.pools import make_pool


def test_a_failing_receiver_is_retried_with_backoff_then_given_up(session, requester, monkeypatch):
    from app.settings import get_settings

    monkeypatch.setenv("CROWDLAB_WEBHOOK_MAX_ATTEMPTS", "3")
    monkeypatch.setenv("CROWDLAB_WEBHOOK_BACKOFF_SECONDS", "30")
    get_settings.cache_clear()
    assert [delivery.backoff(n) for n in (1, 2, 3)] == [
        timedelta(seconds=30), timedelta(seconds=60), timedelta(seconds=120)
    ]  # fmt: skip
    pool = make_pool(session, requester)
    sub = WebhookSubscription(
        owner_id=requester.id, pool_id=pool.id, event_type="POOL_CLOSED",
        url="https://hooks.example/receiver", secret_key="k",
    )  # fmt: skip
    session.add(sub)
    session.flush()
    row = WebhookDelivery(subscription_id=sub.id, event={"type": "POOL_CLOSED"})
    session.add(row)
    session.commit()
    monkeypatch.setattr(subscriptions, "check_receiver", lambda url: httpx.URL(url))
    monkeypatch.setattr(delivery, "check_receiver", lambda url: httpx.URL(url))
    seen = []

    def refuse(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers[delivery.SIGNATURE_HEADER])
        return httpx.Response(503)

    transport = httpx.MockTransport(refuse)
    assert delivery.send(session, row.id, transport=transport) == "pending"
    assert delivery.send(session, row.id, transport=transport) == "pending"  # not due yet
    for _ in range(2):
        session.refresh(row)
        row.next_attempt_at = row.next_attempt_at - timedelta(hours=1)
        session.add(row)
        session.commit()
        status = delivery.send(session, row.id, transport=transport)
    assert status == "failed" and len(seen) == 3
    session.refresh(row)
    assert row.attempts == 3 and row.last_error == "HTTP 503"


def test_receivers_on_private_addresses_are_refused(monkeypatch):
    from app.settings import get_settings

    monkeypatch.setenv("CROWDLAB_ALLOW_PRIVATE_WEBHOOK_URLS", "false")
    get_settings.cache_clear()
    for url in ("http://127.0.0.1/hook", "http://10.0.0.5/x", "ftp://example.com/", "nonsense"):
        with pytest.raises(ValidationFailed):
            subscriptions.check_receiver(url)
