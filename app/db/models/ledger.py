"""The money ledger: every balance is the sum of its entries."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.db.types import UTCDateTime, utcnow


class LedgerAccount(StrEnum):
    BALANCE = "balance"
    RESERVED = "reserved"


class LedgerKind(StrEnum):
    TOPUP = "topup"
    RESERVE = "reserve"
    RELEASE = "release"
    PAYMENT = "payment"
    EARNING = "earning"
    FEE = "fee"
    BONUS = "bonus"
    WITHDRAWAL = "withdrawal"


class LedgerEntry(SQLModel, table=True):
    """A signed amount in cents on one user's account.

    The unique constraint makes a payment for an assignment writable once: a second
    write for the same (kind, assignment, user, account) fails in the database.
    """

    __tablename__ = "ledger_entry"
    __table_args__ = (
        UniqueConstraint(
            "kind", "assignment_id", "user_id", "account", name="uq_ledger_once_per_assignment"
        ),
        Index("ix_ledger_user_account", "user_id", "account"),
        Index("ix_ledger_pool", "pool_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(
        sa_column=Column(Integer, ForeignKey("user_account.id", ondelete="CASCADE"), nullable=False)
    )
    account: str = Field(sa_column=Column(String(16), nullable=False))
    kind: str = Field(sa_column=Column(String(16), nullable=False))
    amount_cents: int = Field(sa_column=Column(BigInteger, nullable=False))
    pool_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("pool.id", ondelete="SET NULL"), nullable=True),
    )
    assignment_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("assignment.id", ondelete="SET NULL"), nullable=True),
    )
    counterparty_id: int | None = Field(
        default=None,
        sa_column=Column(
            Integer, ForeignKey("user_account.id", ondelete="SET NULL"), nullable=True
        ),
    )
    memo: str = Field(default="", max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
