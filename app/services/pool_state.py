"""Pool state changes shared by the console (close by hand) and the labeling path (complete)."""

from __future__ import annotations

from sqlmodel import Session

from app.db.models import Pool, PoolStatus
from app.db.types import utcnow
from app.services import ledger


def _close_pool(session: Session, *, pool: Pool, reason: str) -> int:
    """Close an open pool and release its unspent reservation (flush only).

    Reasons follow Toloka: MANUAL, COMPLETED, EXPIRED, NOT_ENOUGH_BALANCE. Returns the
    released amount in cents. Money still owed for submitted-but-unreviewed suites stays
    reserved when the pool is reviewed manually.
    """
    if pool.status != PoolStatus.OPEN:
        return 0
    pool.status = PoolStatus.CLOSED
    pool.close_reason = reason
    pool.closed_at = utcnow()
    session.add(pool)
    session.flush()
    if not pool.auto_accept:
        return 0
    return ledger._release(session, pool=pool, memo=f"Released on close ({reason.lower()})")
