"""Bonuses: a requester pays a labeler extra for accepted work, through the ledger.

Each bonus is a ``UserBonus`` row (its id, assignment and texts) beside the ledger entries
that move the money; both are written in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, select

from app.db.models import (
    Assignment,
    AssignmentStatus,
    Pool,
    Role,
    User,
    UserBonus,
)
from app.errors import NotFound, ValidationFailed
from app.services.money import ledger

MIN_BONUS_CENTS = 1
MAX_BONUS_CENTS = 100_00


@dataclass
class Bonus:
    """A granted bonus, read back."""

    id: int
    labeler_id: int
    requester_id: int
    pool_id: int | None
    assignment_id: int | None
    amount_cents: int
    title: str
    message: str
    private_comment: str
    created_at: datetime

    @property
    def text(self) -> str:
        """Title and message as one line (what the labeler reads)."""
        return ": ".join(part for part in (self.title, self.message) if part)


def as_bonus(row: UserBonus) -> Bonus:
    """A bonus row as the edges read it."""
    return Bonus(
        id=row.id,
        labeler_id=row.labeler_id,
        requester_id=row.requester_id,
        pool_id=row.pool_id,
        assignment_id=row.assignment_id,
        amount_cents=row.amount_cents,
        title=row.public_title,
        message=row.public_message,
        private_comment=row.private_comment,
        created_at=row.created_at,
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


def _assignment_pool(
    session: Session, *, requester: User, labeler_id: int, assignment_id: int
) -> Pool:
    """The pool of an accepted assignment of this labeler in one of the requester's pools."""
    assignment = session.get(Assignment, assignment_id)
    pool = session.get(Pool, assignment.pool_id) if assignment is not None else None
    if pool is None or pool.owner_id != requester.id:
        raise NotFound("No such assignment.")
    if assignment.labeler_id != labeler_id:
        raise ValidationFailed(
            "The assignment was done by another labeler.",
            errors={"assignment_id": "Another labeler's assignment."},
        )
    if assignment.status != AssignmentStatus.ACCEPTED:
        raise ValidationFailed(
            "Bonuses are for accepted assignments.",
            errors={"assignment_id": "Not accepted."},
        )
    return pool


def pay_bonus_row(
    session: Session,
    *,
    requester: User,
    labeler_id: int,
    amount_cents: int,
    title: str = "",
    message: str = "",
    private_comment: str = "",
    pool_id: int | None = None,
    assignment_id: int | None = None,
    operation_id: str | None = None,
    item_index: int | None = None,
) -> UserBonus:
    """Validate and pay one bonus (flush only); see ``grant_bonus``."""
    labeler = session.get(User, labeler_id)
    if labeler is None or labeler.role != Role.LABELER:
        raise NotFound("No such labeler.")
    if not MIN_BONUS_CENTS <= int(amount_cents) <= MAX_BONUS_CENTS:
        raise ValidationFailed(
            "A bonus is between $0.01 and $100.00.", errors={"amount": "0.01 to 100.00."}
        )
    title, message = (title or "").strip(), (message or "").strip()
    text = ": ".join(part for part in (title, message) if part)
    if not text or len(title) > 200 or len(message) > 450:
        raise ValidationFailed(
            "Tell the labeler what the bonus is for (up to 450 characters).",
            errors={"message": "Required."},
        )
    if assignment_id is not None:
        pool = _assignment_pool(
            session, requester=requester, labeler_id=labeler_id, assignment_id=assignment_id
        )
    else:
        pool = _accepted_pool(session, requester=requester, labeler_id=labeler_id, pool_id=pool_id)
    if pool is None or (pool_id is not None and pool.id != pool_id):
        raise ValidationFailed(
            "Bonuses go to labelers with accepted work in your pools.",
            errors={"labeler_id": "No accepted work from this labeler."},
        )
    row = UserBonus(
        requester_id=requester.id,
        labeler_id=labeler_id,
        pool_id=pool.id,
        assignment_id=assignment_id,
        amount_cents=int(amount_cents),
        public_title=title,
        public_message=message,
        private_comment=(private_comment or "").strip()[:1000],
        operation_id=operation_id,
        item_index=item_index,
    )
    session.add(row)
    session.flush()  # an operation item paid before fails here, before money moves
    entry = ledger.pay_bonus(
        session,
        pool=pool,
        requester_id=requester.id,
        labeler_id=labeler_id,
        amount_cents=int(amount_cents),
        message=text,
    )
    row.ledger_entry_id = entry.id
    session.add(row)
    session.flush()
    return row


def grant_bonus(
    session: Session,
    *,
    requester: User,
    labeler_id: int,
    amount_cents: int,
    message: str,
    title: str = "",
    private_comment: str = "",
    pool_id: int | None = None,
    assignment_id: int | None = None,
) -> Bonus:
    """Pay a bonus ($0.01-$100.00) from the requester's balance to a labeler.

    The labeler must have accepted work in one of the requester's pools (in ``pool_id``
    when given; ``assignment_id`` names an accepted assignment of theirs). The pool's
    platform fee applies to bonuses too.
    """
    row = pay_bonus_row(
        session,
        requester=requester,
        labeler_id=labeler_id,
        amount_cents=amount_cents,
        title=title,
        message=message,
        private_comment=private_comment,
        pool_id=pool_id,
        assignment_id=assignment_id,
    )
    session.commit()
    session.refresh(row)
    return as_bonus(row)


def get_bonus(session: Session, *, requester: User, bonus_id: int) -> Bonus:
    """One bonus the requester granted (someone else's → NotFound)."""
    row = session.get(UserBonus, bonus_id)
    if row is None or row.requester_id != requester.id:
        raise NotFound("No such bonus.")
    return as_bonus(row)


def list_bonuses(
    session: Session,
    *,
    requester: User,
    labeler_id: int | None = None,
    assignment_id: int | None = None,
    id_bounds: dict[str, int | None] | None = None,
    ascending: bool = False,
    limit: int = 200,
) -> list[Bonus]:
    """Bonuses the requester granted, newest first (``ascending``: oldest first);
    ``id_bounds``: ``{"gt"|"gte"|"lt"|"lte": id}``."""
    query = select(UserBonus).where(UserBonus.requester_id == requester.id)
    if labeler_id is not None:
        query = query.where(UserBonus.labeler_id == labeler_id)
    if assignment_id is not None:
        query = query.where(UserBonus.assignment_id == assignment_id)
    ops = {"gt": "__gt__", "gte": "__ge__", "lt": "__lt__", "lte": "__le__"}
    for op, bound in (id_bounds or {}).items():
        if bound is not None:
            query = query.where(getattr(UserBonus.id, ops[op])(bound))
    order = UserBonus.id if ascending else UserBonus.id.desc()
    rows = session.exec(query.order_by(order).limit(limit)).all()
    return [as_bonus(r) for r in rows]
