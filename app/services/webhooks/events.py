"""Emitting an event: a delivery row per matching subscription, sent after the commit."""

from __future__ import annotations

from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, select

from app.db.models import Assignment, WebhookDelivery, WebhookSubscription
from app.db.types import utcnow
from app.services.jobs.records import create_job, dispatch

JOB_KIND = "webhooks"


def _iso_now() -> str:
    return utcnow().replace(tzinfo=None).isoformat(timespec="milliseconds")


def emit(session: Session, *, pool_id: int, event_type: str, **fields: object) -> int:
    """Queue ``event_type`` for the pool's subscribers (flush only); a job sends it once the
    caller's transaction commits. Returns how many deliveries were queued."""
    subscriptions = session.exec(
        select(WebhookSubscription.id).where(
            WebhookSubscription.pool_id == pool_id, WebhookSubscription.event_type == event_type
        )
    ).all()
    if not subscriptions:
        return 0
    event = {
        "type": event_type,
        "pool_id": f"{pool_id:010d}",
        "event_time": _iso_now(),
        **{k: (f"{v:010d}" if k.endswith("_id") and isinstance(v, int) else v)
           for k, v in fields.items()},
    }  # fmt: skip
    rows = [WebhookDelivery(subscription_id=sid, event=event) for sid in subscriptions]
    session.add_all(rows)
    session.flush()
    job = create_job(
        session, kind=JOB_KIND, owner=None, payload={"delivery_ids": [r.id for r in rows]}
    )
    session.info.setdefault(_PENDING, []).append(job.id)
    return len(rows)


_PENDING = "webhook_jobs"


def subscribed_assignments(
    session: Session, assignment_ids: list[int], *, event_type: str
) -> list[tuple[int, int]]:
    """(pool id, assignment id) of those assignments whose pool subscribes to the event:
    one query for a batch (a bulk expiry), so unsubscribed pools cost nothing more."""
    if not assignment_ids:
        return []
    subscribed = (
        select(WebhookSubscription.pool_id)
        .where(WebhookSubscription.event_type == event_type)
        .distinct()
    )
    return list(
        session.exec(
            select(Assignment.pool_id, Assignment.id)
            .where(Assignment.id.in_(assignment_ids), Assignment.pool_id.in_(subscribed))
            .order_by(Assignment.id)
        ).all()
    )


@sa_event.listens_for(OrmSession, "after_commit")
def _dispatch_after_commit(session: OrmSession) -> None:
    """Send the deliveries queued in the transaction that just committed."""
    for job_id in session.info.pop(_PENDING, []):
        dispatch(job_id)


@sa_event.listens_for(OrmSession, "after_soft_rollback")
def _forget_after_rollback(session: OrmSession, _previous) -> None:
    """A rolled-back transaction's deliveries never existed."""
    if not session.in_transaction():
        session.info.pop(_PENDING, None)
