"""Periodic step: expire task suites that ran past their time limit."""

from __future__ import annotations

from app.db.engine import session_scope
from app.services.labeling.assignments import expire_overdue
from workers.periodic import periodic_step


@periodic_step("expire_assignments")
def expire_assignments() -> int:
    """Expire overdue suites so their slots go back to the pool; returns how many."""
    with session_scope() as session:
        return expire_overdue(session)
