"""Sending deliveries: signed POSTs, retried with exponential backoff."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta

import httpx
from sqlalchemy import update
from sqlmodel import Session, select

from app.db.models import WebhookDelivery, WebhookSubscription
from app.db.types import utcnow
from app.errors import ValidationFailed
from app.services.jobs.records import create_job, dispatch
from app.services.webhooks.events import JOB_KIND
from app.services.webhooks.subscriptions import check_receiver
from app.settings import get_settings

TIMEOUT_SECONDS = 10.0
SIGNATURE_HEADER = "X-Crowdlab-Signature"
CLAIM_SECONDS = 60  # a delivery being sent is not due again for this long


def signature(secret: str, body: bytes) -> str:
    """``sha256=<hex HMAC of the body>`` (the receiver recomputes it with its secret)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def backoff(attempts: int) -> timedelta:
    """Wait before attempt ``attempts + 1``: base × 2^(attempts-1), at most an hour."""
    base = get_settings().webhook_backoff_seconds
    return timedelta(seconds=min(base * 2 ** max(attempts - 1, 0), 3600))


def _claim(session: Session, delivery_id: int) -> bool:
    """Take a due pending delivery for this attempt (one sender at a time)."""
    now = utcnow()
    table = WebhookDelivery.__table__
    result = session.execute(
        update(table)
        .where(
            table.c.id == delivery_id, table.c.status == "pending", table.c.next_attempt_at <= now
        )
        .values(next_attempt_at=now + timedelta(seconds=CLAIM_SECONDS))
    )
    session.commit()
    return bool(result.rowcount)


def send(
    session: Session, delivery_id: int, *, transport: httpx.BaseTransport | None = None
) -> str:
    """One attempt at a delivery; returns its status afterwards."""
    if not _claim(session, delivery_id):
        row = session.get(WebhookDelivery, delivery_id)
        return row.status if row else "gone"
    delivery = session.get(WebhookDelivery, delivery_id)
    subscription = session.get(WebhookSubscription, delivery.subscription_id)
    body = json.dumps({"events": [delivery.event]}, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "Crowdlab-Webhooks"}
    if subscription.secret_key:
        headers[SIGNATURE_HEADER] = signature(subscription.secret_key, body)
    error = None
    try:
        check_receiver(subscription.url)  # the name may point elsewhere by now
        with httpx.Client(
            timeout=TIMEOUT_SECONDS, follow_redirects=False, transport=transport
        ) as c:
            response = c.post(subscription.url, content=body, headers=headers)
        if not 200 <= response.status_code < 300:
            error = f"HTTP {response.status_code}"
    except (httpx.HTTPError, ValidationFailed) as exc:
        error = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
    delivery.attempts += 1
    if error is None:
        delivery.status, delivery.delivered_at, delivery.last_error = "delivered", utcnow(), None
    elif delivery.attempts >= get_settings().webhook_max_attempts:
        delivery.status, delivery.last_error = "failed", error[:500]
    else:
        delivery.last_error = error[:500]
        delivery.next_attempt_at = utcnow() + backoff(delivery.attempts)
    session.add(delivery)
    session.commit()
    return delivery.status


def retry_due(session: Session, *, batch: int = 500) -> int:
    """Queue a job for the pending deliveries whose next attempt is due (periodic)."""
    due = session.exec(
        select(WebhookDelivery.id)
        .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= utcnow())
        .order_by(WebhookDelivery.id)
        .limit(batch)
    ).all()
    if not due:
        return 0
    job = create_job(session, kind=JOB_KIND, owner=None, payload={"delivery_ids": list(due)})
    session.commit()
    dispatch(job.id)
    return len(due)
