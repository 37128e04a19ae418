"""Periodic step: release what closed pools no longer need from their reservations."""

from __future__ import annotations

from app.db.engine import session_scope
from app.services.money.ledger import release_closed_pools
from workers.periodic import periodic_step


@periodic_step("release_closed_pools")
def release_reservations() -> int:
    """Release the settled part of closed pools' reservations; returns the cents released."""
    with session_scope() as session:
        return release_closed_pools(session)
