"""Job leases: the heartbeat a running job renews, and what becomes of a job whose
worker stopped responding (retried from its checkpoint, or failed with a reason)."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlmodel import Session

from app.db.engine import session_scope
from app.db.models import Job, JobStatus
from app.db.types import utcnow
from app.services.jobs.records import Lease, ProgressReporter, lease_seconds, renew_heartbeat
from app.settings import get_settings

log = logging.getLogger("crowdlab.jobs")


class Heartbeat:
    """Renews a running job's heartbeat from a background thread until stopped.

    Each renewal is a short write transaction of its own, so a long training epoch (no
    progress report for minutes) still shows a live worker. When a renewal is refused
    (the lease was taken over, or the job cancelled or failed meanwhile) the thread stops
    and tells the job's progress reporter, which then raises ``LeaseLost``.
    """

    def __init__(self, lease: Lease, progress: ProgressReporter | None = None,
                 interval: float | None = None) -> None:  # fmt: skip
        self.lease = lease
        self.progress = progress
        self.interval = interval or get_settings().resolved_job_heartbeat_seconds
        self.beats = 0
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"heartbeat-job-{lease.job_id}", daemon=True
        )

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop renewing (the job ended); waits for a renewal in flight."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                held = renew_heartbeat(self.lease)
            except Exception:  # noqa: BLE001 - a database hiccup: try again next beat
                log.warning("heartbeat of job %s failed", self.lease.job_id, exc_info=True)
                continue
            if not held:
                log.warning("job %s: lease lost, this worker stops", self.lease.job_id)
                self.lost = True
                if self.progress is not None:
                    self.progress.lease_lost = True
                return
            self.beats += 1


@dataclass(frozen=True)
class StaleJob:
    """A running job whose worker has not renewed its heartbeat within the lease."""

    id: int
    kind: str
    payload: dict
    token: str | None
    attempts: int
    max_attempts: int
    cancel_requested: bool
    last_heard: datetime


def list_stale_jobs(session: Session, *, now: datetime | None = None) -> list[StaleJob]:
    """Running jobs not heard from within the lease (oldest first)."""
    cutoff = (now or utcnow()) - timedelta(seconds=lease_seconds())
    rows = session.scalars(
        select(Job)
        .where(Job.status == JobStatus.RUNNING)
        .where(
            (Job.heartbeat_at < cutoff)
            | (Job.heartbeat_at.is_(None) & (Job.started_at.is_(None) | (Job.started_at < cutoff)))
        )
        .order_by(Job.id)
    ).all()
    return [
        StaleJob(
            id=job.id,
            kind=job.kind,
            payload=dict(job.payload),
            token=job.lease_token,
            attempts=job.attempts,
            max_attempts=job.max_attempts,
            cancel_requested=job.cancel_requested,
            last_heard=job.heartbeat_at or job.started_at or job.created_at,
        )
        for job in rows
    ]


def list_waiting_jobs(session: Session, *, older_than_s: float, now: datetime | None = None
                      ) -> list[int]:  # fmt: skip
    """Ids of jobs still queued ``older_than_s`` seconds after they were created: waiting
    behind others, or never delivered to the queue (it was unreachable when they were
    submitted or re-queued); the queue tells which."""
    cutoff = (now or utcnow()) - timedelta(seconds=older_than_s)
    return list(
        session.scalars(
            select(Job.id)
            .where(Job.status == JobStatus.QUEUED, Job.cancel_requested.is_(False))
            .where(Job.created_at < cutoff)
            .order_by(Job.id)
        ).all()
    )


def stopped_reason(stale: StaleJob) -> str:
    """Why an abandoned job stopped, in words."""
    return (
        "The worker running this job stopped responding "
        f"(no heartbeat since {stale.last_heard:%Y-%m-%d %H:%M:%S} UTC)."
    )


def _take_back(stale: StaleJob, **values: object) -> bool:
    """Change an abandoned job in one conditional write: only if nobody renewed it since."""
    with session_scope() as session:
        result = session.execute(
            update(Job)
            .where(
                Job.id == stale.id,
                Job.status == JobStatus.RUNNING,
                Job.lease_token.is_not_distinct_from(stale.token),
                Job.attempts == stale.attempts,
            )
            .values(**values)
        )
        session.commit()
        return result.rowcount == 1


def requeue_interrupted_job(lease: Lease, *, reason: str) -> bool:
    """Put a job whose attempt was interrupted by a passing failure (the database dropped
    its connection) back in the queue for its next attempt (the caller dispatches); False
    when it has no attempt left or this worker no longer holds its lease."""
    if lease.attempt >= lease.max_attempts:
        return False
    with session_scope() as session:
        result = session.execute(
            update(Job)
            .where(
                Job.id == lease.job_id,
                Job.status == JobStatus.RUNNING,
                Job.lease_token == lease.token,
            )  # fmt: skip
            .values(
                status=JobStatus.QUEUED,
                lease_token=None,
                heartbeat_at=None,
                worker=None,
                message=(
                    f"Retrying after {reason} (attempt {lease.attempt + 1} "
                    f"of {lease.max_attempts})."
                ),
                error=reason,
            )
        )
        session.commit()
        return result.rowcount == 1


def requeue_stale_job(stale: StaleJob) -> bool:
    """Put an abandoned job back in the queue for its next attempt (the caller dispatches)."""
    return _take_back(
        stale,
        status=JobStatus.QUEUED,
        lease_token=None,
        heartbeat_at=None,
        worker=None,
        message=(
            f"Retrying after the worker stopped (attempt {stale.attempts + 1} "
            f"of {stale.max_attempts})."
        ),
        error=stopped_reason(stale),
    )


def fail_stale_job(stale: StaleJob) -> bool:
    """Fail an abandoned job that has used all its attempts, saying why."""
    reason = stopped_reason(stale)
    if stale.attempts > 1:
        reason += f" It was tried {stale.attempts} times."
    return _take_back(
        stale,
        status=JobStatus.FAILED,
        lease_token=None,
        finished_at=utcnow(),
        message=reason[:1000],
        error=reason,
    )


def cancel_stale_job(stale: StaleJob) -> bool:
    """Finish the cancel of an abandoned job whose owner had asked it to stop."""
    return _take_back(
        stale,
        status=JobStatus.CANCELLED,
        lease_token=None,
        finished_at=utcnow(),
        message=f"Cancelled. {stopped_reason(stale)}"[:1000],
    )
