"""Webhook subscriptions (Toloka's) and their deliveries, retried with backoff."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.db.types import UTCDateTime, utcnow


class WebhookSubscription(SQLModel, table=True):
    """Send ``event_type`` events of a pool to ``url``, signed with ``secret_key``."""

    __tablename__ = "webhook_subscription"
    __table_args__ = (
        UniqueConstraint("pool_id", "event_type", "url", name="uq_webhook_subscription"),
        Index("ix_webhook_subscription_owner", "owner_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = Field(
        sa_column=Column(Integer, ForeignKey("user_account.id", ondelete="CASCADE"), nullable=False)
    )
    pool_id: int = Field(
        sa_column=Column(Integer, ForeignKey("pool.id", ondelete="CASCADE"), nullable=False)
    )
    event_type: str = Field(sa_column=Column(String(40), nullable=False))
    url: str = Field(sa_column=Column(String(2000), nullable=False))
    secret_key: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class WebhookDelivery(SQLModel, table=True):
    """One event on its way to one subscription: ``pending`` until the receiver answers
    2xx (``delivered``) or the attempts run out (``failed``)."""

    __tablename__ = "webhook_delivery"
    __table_args__ = (Index("ix_webhook_delivery_due", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    subscription_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("webhook_subscription.id", ondelete="CASCADE"), nullable=False
        )
    )
    event: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = Field(default="pending", sa_column=Column(String(16), nullable=False))
    attempts: int = Field(default=0)
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
