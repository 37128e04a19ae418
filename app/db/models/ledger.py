"""The money ledger: every balance is the sum of its entries."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
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
    # a negative balance left by a version before the balance guard, written off to zero
    WRITE_OFF = "write_off"


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


class AccountBalance(SQLModel, table=True):
    """A user's spendable balance: the running sum of their ``balance`` entries.

    Every ``balance`` entry moves this row in the same transaction, a debit only by a
    conditional ``UPDATE ... WHERE cents >= amount``; the check constraint is the last
    line of defence, so no interleaving of requests can take a balance below zero.
    """

    __tablename__ = "account_balance"
    __table_args__ = (CheckConstraint("cents >= 0", name="ck_account_balance_not_negative"),)

    user_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True
        )
    )
    cents: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))


class UserBonus(SQLModel, table=True):
    """A bonus a requester paid a labeler (Toloka's user bonus), with what it was for.

    The money moves in the ledger (``ledger_entry_id`` is the labeler's entry); this row
    keeps the bonus's own id, its assignment and texts. A client-chosen ``operation_id``
    with the item's index is unique, so one operation never pays the same item twice,
    however often it is retried or raced.
    """

    __tablename__ = "user_bonus"
    __table_args__ = (
        UniqueConstraint("operation_id", "item_index", name="uq_user_bonus_operation_item"),
        Index("ix_user_bonus_requester", "requester_id", "id"),
        Index("ix_user_bonus_labeler", "labeler_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    requester_id: int = Field(
        sa_column=Column(Integer, ForeignKey("user_account.id", ondelete="CASCADE"), nullable=False)
    )
    labeler_id: int = Field(
        sa_column=Column(Integer, ForeignKey("user_account.id", ondelete="CASCADE"), nullable=False)
    )
    pool_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("pool.id", ondelete="SET NULL"), nullable=True),
    )
    assignment_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("assignment.id", ondelete="SET NULL"), nullable=True),
    )
    amount_cents: int = Field(sa_column=Column(BigInteger, nullable=False))
    public_title: str = Field(default="", max_length=200)
    public_message: str = Field(default="", max_length=1000)
    private_comment: str = Field(default="", max_length=1000)
    operation_id: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    item_index: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    ledger_entry_id: int | None = Field(
        default=None,
        sa_column=Column(
            Integer, ForeignKey("ledger_entry.id", ondelete="SET NULL"), nullable=True
        ),
    )
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
