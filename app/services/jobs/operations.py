"""Finished operations: synchronous API actions recorded as job rows so that Toloka clients
can read them back with ``GET /operations/{id}`` (and ``/log``)."""

from __future__ import annotations

from sqlmodel import Session, select

from app.db.models import Job, JobStatus, User
from app.db.types import utcnow
from app.errors import Conflict

KIND = "operation"


class OperationExists(Conflict):
    """A client retried an operation id it already used."""

    code = "OPERATION_ALREADY_EXISTS"


def check_operation_id(session: Session, *, external_id: str | None) -> None:
    """Refuse a client-chosen operation id that is taken (Toloka's idempotency answer)."""
    if external_id and session.exec(select(Job.id).where(Job.external_id == external_id)).first():
        raise OperationExists(f"An operation with id {external_id} already exists.")


def record_operation(
    session: Session,
    *,
    owner: User,
    operation_type: str,
    parameters: dict,
    details: dict | None = None,
    log: list | None = None,
    external_id: str | None = None,
    failed: bool = False,
) -> Job:
    """Add a finished operation row (flush only; the caller's transaction commits it)."""
    now = utcnow()
    job = Job(
        kind=KIND,
        owner_id=owner.id,
        external_id=external_id or None,
        status=JobStatus.FAILED if failed else JobStatus.SUCCEEDED,
        progress=1.0,
        payload={"operation_type": operation_type, "parameters": parameters},
        result={**(details or {}), "log": log or []},
        created_at=now,
        started_at=now,
        finished_at=now,
    )
    session.add(job)
    session.flush()
    return job
