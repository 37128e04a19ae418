"""Auto-accept suites whose pool's manual-review period has ended (once a minute)."""

from __future__ import annotations

from app.db.engine import session_scope
from app.services.quality.review import auto_accept_due
from workers.periodic import periodic_step


@periodic_step("auto_accept_reviews")
def auto_accept_reviews() -> int:
    """Accept and pay every SUBMITTED suite past its pool's review period."""
    total = 0
    with session_scope() as session:
        while True:
            accepted = auto_accept_due(session, limit=500)
            total += accepted
            if accepted < 500:
                return total
