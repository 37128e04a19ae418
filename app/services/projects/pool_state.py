"""Pool state changes shared by the console (close by hand) and the labeling path (complete)."""

from __future__ import annotations

from sqlmodel import Session

from app.db.models import Pool, PoolStatus
from app.db.types import utcnow
from app.services.money import ledger
from app.services.webhooks import events as webhooks


def mark_closed(session: Session, *, pool: Pool, reason: str) -> int:
    """Close an open pool and release its unspent reservation (flush only).

    Reasons follow Toloka: MANUAL, COMPLETED, EXPIRED, NOT_ENOUGH_BALANCE. Returns the
    released amount in cents. What the suites still out or awaiting review may cost stays
    reserved; ``release_closed_pools`` returns it once they are settled.
    """
    if pool.status != PoolStatus.OPEN:
        return 0
    pool.status = PoolStatus.CLOSED
    pool.close_reason = reason
    pool.closed_at = utcnow()
    session.add(pool)
    session.flush()
    webhooks.emit(session, pool_id=pool.id, event_type="POOL_CLOSED", close_reason=reason)
    return ledger.release_pool_reservation(
        session, pool=pool, memo=f"Released on close ({reason.lower()})"
    )
