"""Bonuses: a requester pays a labeler extra for accepted work, through the ledger."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, select

from app.db.models import (
    Assignment,
    AssignmentStatus,
    LedgerEntry,
    LedgerKind,
    Pool,
    Role,
    User,
)
from app.errors import NotFound, ValidationFailed
from app.services.money import ledger

MIN_BONUS_CENTS = 1
MAX_BONUS_CENTS = 100_00


@dataclass
class Bonus:
    """A granted bonus (the labeler's ledger entry, read back)."""

    id: int
    labeler_id: int
    requester_id: int
    pool_id: int | None
    amount_cents: int
    message: str
    created_at: datetime


def _as_bonus(entry: LedgerEntry) -> Bonus:
    return Bonus(
        id=entry.id,
        labeler_id=entry.user_id,
        requester_id=entry.counterparty_id,
        pool_id=entry.pool_id,
        amount_cents=entry.amount_cents,
        message=entry.memo,
        created_at=entry.created_at,
    )


def _accepted_pool(session: Session, *, requester: User, labeler_id: int, pool_id: int | None):
    query = (
        select(Pool)
        .join(Assignment, Assignment.pool_id == Pool.id)
        .where(
            Pool.owner_id == requester.id,
            Assignment.labeler_id == labeler_id,
            Assignment.status == AssignmentStatus.ACCEPTED,
        )
    )
    if pool_id is not None:
        query = query.where(Pool.id == pool_id)
    return session.exec(query.order_by(Assignment.id.desc())).first()


def grant_bonus(
    session: Session,
    *,
    requester: User,
    labeler_id: int,
    amount_cents: int,
    message: str,
    pool_id: int | None = None,
) -> Bonus:
    """Pay a bonus ($0.01-$100.00) from the requester's balance to a labeler.

    The labeler must have accepted work in one of the requester's pools (in ``pool_id``
    when given). The pool's platform fee applies to bonuses too.
    """
    labeler = session.get(User, labeler_id)
    if labeler is None or labeler.role != Role.LABELER:
        raise NotFound("No such labeler.")
    if not MIN_BONUS_CENTS <= int(amount_cents) <= MAX_BONUS_CENTS:
        raise ValidationFailed(
            "A bonus is between $0.01 and $100.00.", errors={"amount": "0.01 to 100.00."}
        )
    message = (message or "").strip()
    if not message or len(message) > 450:
        raise ValidationFailed(
            "Tell the labeler what the bonus is for (up to 450 characters).",
            errors={"message": "Required."},
        )
    pool = _accepted_pool(session, requester=requester, labeler_id=labeler_id, pool_id=pool_id)
    if pool is None:
        raise ValidationFailed(
            "Bonuses go to labelers with accepted work in your pools.",
            errors={"labeler_id": "No accepted work from this labeler."},
        )
    entry = ledger.pay_bonus(
        session,
        pool=pool,
        requester_id=requester.id,
        labeler_id=labeler_id,
        amount_cents=int(amount_cents),
        message=message,
    )
    session.commit()
    session.refresh(entry)
    return _as_bonus(entry)


def list_bonuses(
    session: Session, *, requester: User, labeler_id: int | None = None, limit: int = 200
) -> list[Bonus]:
    """Bonuses the requester granted, newest first."""
    query = select(LedgerEntry).where(
        LedgerEntry.kind == LedgerKind.BONUS,
        LedgerEntry.counterparty_id == requester.id,
        LedgerEntry.amount_cents > 0,
    )
    if labeler_id is not None:
        query = query.where(LedgerEntry.user_id == labeler_id)
    entries = session.exec(query.order_by(LedgerEntry.id.desc()).limit(limit)).all()
    return [_as_bonus(e) for e in entries]
