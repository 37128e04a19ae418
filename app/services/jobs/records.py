"""Job rows: create, report progress, finish, cancel; what the progress bars poll."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import func, literal, select, update
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from app.db.engine import is_busy_error, session_scope
from app.db.models import Job, JobStatus, User
from app.db.sqlite_writers import writing_here
from app.db.types import UTCDateTime, utcnow
from app.errors import Conflict, NotFound
from app.settings import get_settings


def create_job(
    session: Session,
    *,
    kind: str,
    owner: User | None,
    payload: dict,
    external_id: str | None = None,
) -> Job:
    """Add a queued job row (flushed, not committed: the caller commits, then dispatches).

    ``payload["operation_type"]`` (e.g. ``"SOLUTION.AGGREGATE"``) and
    ``payload["parameters"]`` shape the job as a Toloka operation in the API;
    ``external_id`` is a client-chosen operation id.
    """
    job = Job(
        kind=kind, owner_id=owner.id if owner else None, payload=payload, external_id=external_id
    )
    session.add(job)
    session.flush()
    return job


def get_job(session: Session, *, owner: User, job_id: int | str) -> Job:
    """One of the owner's jobs by id or external id (someone else's → ``NotFound``)."""
    job = None
    if isinstance(job_id, int) or str(job_id).isdigit():
        job = session.get(Job, int(job_id))
    if job is None:
        job = session.scalars(select(Job).where(Job.external_id == str(job_id))).first()
    if job is None or job.owner_id != owner.id:
        raise NotFound("No such job.")
    return job


def request_cancel(session: Session, *, owner: User, job_id: int | str) -> Job:
    """Cancel one of the owner's jobs, whatever state it is in.

    A queued job is cancelled at once; a running one is asked to stop at its next progress
    report, or cancelled at once when its worker stopped responding (no heartbeat within the
    lease). A finished job → ``Conflict``.
    """
    job = get_job(session, owner=owner, job_id=job_id)
    ended_running = job.status == JobStatus.RUNNING
    if not cancel_job_row(session, job):
        ended_running = False
    session.commit()
    session.refresh(job)
    if ended_running and job.status == JobStatus.CANCELLED:
        # The worker is gone, so nobody else will tell the job's domain row (a run, a model).
        if _failure_hook is not None:
            _failure_hook(job.kind, dict(job.payload), job.message, cancelled=True)
        remove_work_dir(job.id)
    return job


def cancel_job_row(session: Session, job: Job) -> bool:
    """Flush a cancel of an unfinished job; True when it ended now (queued, or its worker
    stopped), False when the live worker was asked to stop. Finished → ``Conflict``."""
    if job.done:
        raise Conflict("This job has already finished.")
    now = utcnow()
    ended = False
    if job.status == JobStatus.QUEUED:
        ended = _update_if(
            session,
            job,
            Job.status == JobStatus.QUEUED,
            status=JobStatus.CANCELLED,
            cancel_requested=True,
            finished_at=now,
            message="Cancelled before it started.",
        )
    elif heartbeat_is_stale(job, now=now):
        since = job.heartbeat_at or job.started_at or job.created_at
        ended = _update_if(
            session,
            job,
            (Job.status == JobStatus.RUNNING)
            & Job.lease_token.is_not_distinct_from(job.lease_token),
            status=JobStatus.CANCELLED,
            cancel_requested=True,
            finished_at=now,
            lease_token=None,
            message=(
                "Cancelled. The worker running this job had stopped responding "
                f"(no heartbeat since {since:%Y-%m-%d %H:%M:%S} UTC)."
            ),
        )
    if not ended:
        _update_if(session, job, ~Job.status.in_(_DONE), cancel_requested=True)
    session.flush()
    session.expire(job)
    if job.done and not ended:
        raise Conflict("This job has already finished.")
    return ended


_DONE = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


def _update_if(session: Session, job: Job, condition, **values) -> bool:
    """One conditional UPDATE of the job row; True when it matched."""
    result = session.execute(update(Job).where(Job.id == job.id, condition).values(**values))
    return result.rowcount == 1


def lease_seconds() -> float:
    """How long a running job may go without a heartbeat before it counts as abandoned."""
    return float(get_settings().job_lease_seconds)


def heartbeat_is_stale(job: Job, *, now: datetime | None = None) -> bool:
    """Whether a running job's worker has not been heard from within the lease."""
    if job.status != JobStatus.RUNNING:
        return False
    last = job.heartbeat_at or job.started_at or job.created_at
    return last < (now or utcnow()) - timedelta(seconds=lease_seconds())


def job_work_dir(job_id: int) -> Path:
    """A job's own scratch folder (a training's epoch checkpoints); removed when it ends."""
    return get_settings().data_dir / "jobs" / str(int(job_id))


def remove_work_dir(job_id: int) -> None:
    """Remove a job's scratch folder, if any."""
    shutil.rmtree(job_work_dir(job_id), ignore_errors=True)


# The queue (``workers.queue``) installs itself when it is imported, so that services never
# import the workers that run their jobs: how to queue a committed job row by id, and how
# to tell a job's domain row (a run, a model) that its job ended without its worker.
_dispatcher: Callable[[int], None] | None = None
_failure_hook: Callable[..., None] | None = None


def install_queue(*, dispatcher: Callable[[int], None], failure_hook: Callable[..., None]) -> None:
    """Wire the job queue in (``workers.queue`` does it when imported)."""
    global _dispatcher, _failure_hook
    _dispatcher, _failure_hook = dispatcher, failure_hook


def dispatch(job_id: int) -> None:
    """Queue a committed job row for execution (runs at once when jobs are immediate)."""
    if _dispatcher is None:
        raise RuntimeError("No job queue is wired: import workers.queue first (app.main does).")
    _dispatcher(job_id)


class JobCancelled(Exception):
    """Raised inside a job when its owner asked to cancel it."""


class LeaseLost(Exception):
    """Raised inside a job whose lease ended: another worker took it over, or it was
    cancelled or failed while this worker was not responding. Nothing more is written."""


@dataclass(frozen=True)
class Lease:
    """The right of one worker to run one attempt of a job."""

    job_id: int
    token: str
    attempt: int
    max_attempts: int


def _owned(job_id: int, token: str | None):
    condition = (Job.id == job_id) & (Job.status == JobStatus.RUNNING)
    if token is not None:
        condition = condition & (Job.lease_token == token)
    return condition


class ProgressReporter:
    """Writes a job's progress in short transactions of its own, so pages see it live.

    With a ``lease``, a write only lands while the lease is held: a worker that stopped
    responding and came back after the job was taken over gets ``LeaseLost``.
    """

    def __init__(
        self,
        job_id: int,
        listener: Callable[[float, str], None] | None = None,
        lease: Lease | None = None,
    ) -> None:
        self.job_id = job_id
        self.listener = listener  # told of every recorded update (the CLI draws its bar)
        self.lease = lease
        self.lease_lost = False  # set by the heartbeat when a renewal is refused
        self._last_write = 0.0

    def check_lease(self) -> None:
        """Raise ``LeaseLost`` when the heartbeat found the lease gone."""
        if self.lease_lost:
            raise LeaseLost(f"Job {self.job_id}: this worker no longer holds its lease.")

    def __call__(self, fraction: float, message: str = "", *, force: bool = False) -> None:
        """Record progress in [0, 1]; raises ``JobCancelled`` when a cancel was requested
        and ``LeaseLost`` when this worker no longer holds the job."""
        self.check_lease()
        now = time.monotonic()
        if not force and now - self._last_write < 0.5 and fraction < 1.0:
            return
        self._last_write = now
        token = self.lease.token if self.lease else None
        recorded = (max(0.0, min(1.0, float(fraction))), message[:1000])
        with session_scope(write=False) as reading:  # (reads take no lock)
            row = reading.execute(
                select(Job.cancel_requested, Job.message).where(Job.id == self.job_id)
            ).first()
        if row is None:
            return
        if row.cancel_requested:
            raise JobCancelled("Cancelled by its owner.")
        if writing_here():
            # the job itself holds the (SQLite) write lock in an open transaction: a write
            # from another connection would wait for it; the next report tries again
            self._last_write = 0.0
            return
        try:
            with session_scope() as session:
                values: dict = {"progress": recorded[0], "heartbeat_at": utcnow()}
                if message:
                    values["message"] = recorded[1]
                result = session.execute(
                    update(Job).where(_owned(self.job_id, token)).values(**values)
                )
                if result.rowcount != 1:
                    session.rollback()
                    self.lease_lost = True
                    self.check_lease()
                session.commit()
        except DBAPIError as exc:
            if not is_busy_error(exc):
                raise
            # another writer kept the database past the busy timeout: a progress figure is
            # not worth failing the job for; the next report tries again
            self._last_write = 0.0
            return
        recorded = (recorded[0], recorded[1] or row.message or "")
        if self.listener is not None:
            self.listener(*recorded)


def worker_identity() -> str:
    """Who runs a job: host, process and thread."""
    name = f"{socket.gethostname()}:{os.getpid()}:{threading.current_thread().name}"
    return name[:200]


def mark_running(job_id: int) -> Lease | None:
    """Take a queued job's lease and mark it running; None when it was cancelled, taken by
    another worker, or is unknown."""
    token = uuid.uuid4().hex
    now = utcnow()
    with session_scope() as session:
        result = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == JobStatus.QUEUED)
            .values(
                status=JobStatus.RUNNING,
                started_at=func.coalesce(Job.started_at, literal(now, UTCDateTime())),
                heartbeat_at=now,
                lease_token=token,
                worker=worker_identity(),
                attempts=Job.attempts + 1,
            )
        )
        if result.rowcount != 1:
            session.rollback()
            return None
        session.commit()
        attempts, max_attempts = session.execute(
            select(Job.attempts, Job.max_attempts).where(Job.id == job_id)
        ).one()
    return Lease(job_id, token, attempts, max_attempts)


def renew_heartbeat(lease: Lease) -> bool:
    """Renew a running job's heartbeat in a short transaction; False when the lease is gone."""
    with session_scope() as session:
        result = session.execute(
            update(Job).where(_owned(lease.job_id, lease.token)).values(heartbeat_at=utcnow())
        )
        session.commit()
        return result.rowcount == 1


def holds_lease(lease: Lease | None, job_id: int) -> bool:
    """Whether the worker still holds a running job (always True without a lease)."""
    with session_scope(write=False) as session:
        row = session.execute(
            select(Job.id).where(_owned(job_id, lease.token if lease else None))
        ).first()
    return row is not None


def mark_finished(
    job_id: int,
    *,
    status: JobStatus,
    message: str = "",
    error: str | None = None,
    result: dict | None = None,
    lease: Lease | None = None,
) -> bool:
    """Record how a job ended; False (and nothing written) when the lease was lost."""
    values: dict = {"status": status, "finished_at": utcnow(), "error": error}
    if status == JobStatus.SUCCEEDED:
        values["progress"] = 1.0
    if message:
        values["message"] = message[:1000]
    if result is not None:
        values["result"] = result
    with session_scope() as session:
        written = session.execute(
            update(Job).where(_owned(job_id, lease.token if lease else None)).values(**values)
        )
        session.commit()
        return written.rowcount == 1


def submit_job(
    session: Session,
    *,
    kind: str,
    owner: User | None,
    payload: dict,
    external_id: str | None = None,
) -> Job:
    """Create a job row, commit, and queue it (when jobs are immediate, it runs now)."""
    job = create_job(session, kind=kind, owner=owner, payload=payload, external_id=external_id)
    session.commit()
    dispatch(job.id)
    session.refresh(job)
    return job
