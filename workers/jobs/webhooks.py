"""Webhook deliveries: a job sends the deliveries an event queued; once a minute the
pending ones whose backoff has passed are queued again."""

from __future__ import annotations

from collections import Counter

from app.db.engine import session_scope
from app.services.webhooks.delivery import retry_due, send
from app.services.webhooks.events import JOB_KIND
from workers.periodic import periodic_step
from workers.registry import job


@job(JOB_KIND)
def deliver_webhooks(job_id: int, payload: dict, progress) -> dict:
    """Send each delivery once (a failed one waits for its backoff, then the periodic
    step below queues it again); idempotent: delivered ones are skipped."""
    ids = list(payload.get("delivery_ids") or [])
    statuses: Counter = Counter()
    with session_scope() as session:
        for done, delivery_id in enumerate(ids, 1):
            statuses[send(session, delivery_id)] += 1
            progress(done / len(ids))
    return dict(statuses)


@periodic_step("retry_webhooks")
def retry_webhooks() -> int:
    """Queue the pending deliveries that are due."""
    with session_scope() as session:
        return retry_due(session)
