"""Webhook subscriptions: create or update, read, list, delete; receivers must be public."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from datetime import datetime

import httpx
from sqlmodel import Session, select

from app.db.models import Pool, User, WebhookSubscription
from app.errors import NotFound, ValidationFailed
from app.settings import get_settings

EVENT_TYPES = (
    "POOL_CLOSED",
    "ASSIGNMENT_CREATED",
    "ASSIGNMENT_SUBMITTED",
    "ASSIGNMENT_SKIPPED",
    "ASSIGNMENT_EXPIRED",
    "ASSIGNMENT_APPROVED",
    "ASSIGNMENT_REJECTED",
)
# Toloka's other event types; Crowdlab does not send them, so it refuses them.
NOT_SENT = ("DYNAMIC_OVERLAP_COMPLETED",)


@dataclass
class SubscriptionInput:
    """One subscription to create or update."""

    pool_id: int
    event_type: str
    url: str
    secret_key: str | None = None


def check_receiver(url: str) -> httpx.URL:
    """An http(s) URL whose host is public (loopback, private and link-local addresses are
    refused unless ``allow_private_webhook_urls``)."""
    parsed = httpx.URL(url) if url else None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValidationFailed(
            "webhook_url must be an http(s) URL.", errors={"webhook_url": "INVALID_VALUE"}
        )
    if get_settings().allow_private_webhook_urls:
        return parsed
    try:
        infos = socket.getaddrinfo(
            parsed.host, parsed.port or (443 if parsed.scheme == "https" else 80)
        )
    except socket.gaierror:
        raise ValidationFailed(
            f"Cannot resolve {parsed.host}.", errors={"webhook_url": "INVALID_VALUE"}
        ) from None
    for info in infos:
        if not ipaddress.ip_address(info[4][0]).is_global:
            raise ValidationFailed(
                f"{parsed.host} is a private or local address; webhooks go to public receivers.",
                errors={"webhook_url": "PRIVATE_ADDRESS"},
            )
    return parsed


def _check(session: Session, requester: User, item: SubscriptionInput) -> Pool:
    if item.event_type in NOT_SENT:
        raise ValidationFailed(
            f"Crowdlab does not send {item.event_type} events; it sends {', '.join(EVENT_TYPES)}.",
            errors={"event_type": "NOT_SUPPORTED"},
        )
    if item.event_type not in EVENT_TYPES:
        raise ValidationFailed(
            f"event_type is one of {', '.join(EVENT_TYPES)}.",
            errors={"event_type": "INVALID_VALUE"},
        )
    check_receiver(item.url)
    if item.secret_key is not None and len(item.secret_key) > 200:
        raise ValidationFailed(
            "secret_key is at most 200 characters.", errors={"secret_key": "TOO_LONG"}
        )
    pool = session.get(Pool, item.pool_id)
    if pool is None or pool.owner_id != requester.id:
        raise NotFound("No such pool.")
    return pool


def upsert_subscription(
    session: Session, *, requester: User, item: SubscriptionInput
) -> WebhookSubscription:
    """Create the subscription, or update the secret of the same pool, event and URL."""
    _check(session, requester, item)
    found = session.exec(
        select(WebhookSubscription).where(
            WebhookSubscription.pool_id == item.pool_id,
            WebhookSubscription.event_type == item.event_type,
            WebhookSubscription.url == item.url,
        )
    ).first()
    row = found or WebhookSubscription(
        owner_id=requester.id, pool_id=item.pool_id, event_type=item.event_type, url=item.url
    )
    row.secret_key = item.secret_key
    session.add(row)
    session.commit()
    session.refresh(row)
    return row


def get_subscription(
    session: Session, *, requester: User, subscription_id: int
) -> WebhookSubscription:
    """One of the requester's subscriptions."""
    row = session.get(WebhookSubscription, subscription_id)
    if row is None or row.owner_id != requester.id:
        raise NotFound("No such webhook subscription.")
    return row


def list_subscriptions(
    session: Session,
    *,
    requester: User,
    pool_id: int | None = None,
    event_type: str | None = None,
    after_id: int = 0,
    created_after: datetime | None = None,
    by_created: bool = False,
    limit: int = 50,
) -> list[WebhookSubscription]:
    """The requester's subscriptions by id (or by creation time)."""
    query = select(WebhookSubscription).where(
        WebhookSubscription.owner_id == requester.id, WebhookSubscription.id > after_id
    )
    if created_after is not None:
        query = query.where(WebhookSubscription.created_at > created_after)
    if pool_id is not None:
        query = query.where(WebhookSubscription.pool_id == pool_id)
    if event_type:
        query = query.where(WebhookSubscription.event_type == event_type)
    order = (
        (WebhookSubscription.created_at, WebhookSubscription.id)
        if by_created
        else (WebhookSubscription.id,)
    )
    return list(session.exec(query.order_by(*order).limit(limit)))


def delete_subscription(session: Session, *, requester: User, subscription_id: int) -> None:
    """Stop sending (pending deliveries go with it)."""
    row = get_subscription(session, requester=requester, subscription_id=subscription_id)
    session.delete(row)
    session.commit()
