"""Job rows: create, report progress, finish, cancel; what the progress bars poll."""

from __future__ import annotations

from collections.abc import Callable

from sqlmodel import Session

from app.db.engine import session_scope
from app.db.models import Job, JobStatus, User
from app.db.types import utcnow
from app.errors import Conflict, NotFound


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
    from sqlmodel import select

    job = None
    if isinstance(job_id, int) or str(job_id).isdigit():
        job = session.get(Job, int(job_id))
    if job is None:
        job = session.exec(select(Job).where(Job.external_id == str(job_id))).first()
    if job is None or job.owner_id != owner.id:
        raise NotFound("No such job.")
    return job


def request_cancel(session: Session, *, owner: User, job_id: int) -> Job:
    """Ask a running job to stop at its next progress report."""
    job = get_job(session, owner=owner, job_id=job_id)
    if job.done:
        raise Conflict("This job has already finished.")
    job.cancel_requested = True
    if job.status == JobStatus.QUEUED:
        job.status = JobStatus.CANCELLED
        job.finished_at = utcnow()
        job.message = "Cancelled before it started."
    session.add(job)
    session.commit()
    return job


# Queues a committed job row by id. The queue (``workers.queue``) installs itself when it is
# imported, so that services never import the workers that run their jobs.
_dispatcher: Callable[[int], None] | None = None


def set_dispatcher(dispatcher: Callable[[int], None]) -> None:
    """Install the function that queues a committed job (``workers.queue`` does it)."""
    global _dispatcher
    _dispatcher = dispatcher


class JobCancelled(Exception):
    """Raised inside a job when its owner asked to cancel it."""


class ProgressReporter:
    """Writes a job's progress in short transactions of its own, so pages see it live."""

    def __init__(self, job_id: int, listener: Callable[[float, str], None] | None = None) -> None:
        self.job_id = job_id
        self.listener = listener  # told of every recorded update (the CLI draws its bar)
        self._last_write = 0.0

    def __call__(self, fraction: float, message: str = "", *, force: bool = False) -> None:
        """Record progress in [0, 1]; raises ``JobCancelled`` when a cancel was requested."""
        import time

        now = time.monotonic()
        if not force and now - self._last_write < 0.5 and fraction < 1.0:
            return
        self._last_write = now
        with session_scope() as session:
            job = session.get(Job, self.job_id)
            if job is None:
                return
            if job.cancel_requested:
                raise JobCancelled("Cancelled by its owner.")
            job.progress = max(0.0, min(1.0, float(fraction)))
            if message:
                job.message = message[:1000]
            session.add(job)
            session.commit()
            recorded = (job.progress, job.message or "")
        if self.listener is not None:
            self.listener(*recorded)


def mark_running(job_id: int) -> bool:
    """Mark a queued job running; False when it was cancelled (or is unknown)."""
    with session_scope() as session:
        job = session.get(Job, job_id)
        if job is None or job.status != JobStatus.QUEUED:
            return False
        job.status = JobStatus.RUNNING
        job.started_at = utcnow()
        session.add(job)
        session.commit()
        return True


def mark_finished(
    job_id: int,
    *,
    status: JobStatus,
    message: str = "",
    error: str | None = None,
    result: dict | None = None,
) -> None:
    """Record how a job ended."""
    with session_scope() as session:
        job = session.get(Job, job_id)
        if job is None:
            return
        job.status = status
        job.finished_at = utcnow()
        if status == JobStatus.SUCCEEDED:
            job.progress = 1.0
        if message:
            job.message = message[:1000]
        job.error = error
        if result is not None:
            job.result = result
        session.add(job)
        session.commit()


def submit_job(
    session: Session,
    *,
    kind: str,
    owner: User | None,
    payload: dict,
    external_id: str | None = None,
) -> Job:
    """Create a job row, commit, and queue it (when jobs are immediate, it runs now)."""
    if _dispatcher is None:
        raise RuntimeError("No job queue is wired: import workers.queue first (app.main does).")
    job = create_job(session, kind=kind, owner=owner, payload=payload, external_id=external_id)
    session.commit()
    _dispatcher(job.id)
    session.refresh(job)
    return job
