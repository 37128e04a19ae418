"""Operations: background jobs in Toloka's operation shape (``GET /api/v1/operations/{id}``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.api.schemas.common import public_id
from app.db.models import Job, JobStatus
from app.deps import ApiUser, SessionDep
from app.services.jobs.operations import record_operation
from app.services.jobs.records import get_job, request_cancel

router = APIRouter(prefix="/api/v1", tags=["operations"])

_STATUS = {
    JobStatus.QUEUED: "PENDING",
    JobStatus.RUNNING: "RUNNING",
    JobStatus.SUCCEEDED: "SUCCESS",
    JobStatus.FAILED: "FAIL",
    JobStatus.CANCELLED: "FAIL",
}


def _iso(value) -> str | None:
    return value.replace(tzinfo=None).isoformat(timespec="milliseconds") if value else None


def operation_json(job: Job) -> dict[str, Any]:
    """A job as a Toloka operation (status upper-case, progress 0-100, naive UTC times)."""
    details = {k: v for k, v in (job.result or {}).items() if k != "log"}
    if job.status in (JobStatus.FAILED, JobStatus.CANCELLED):
        details.setdefault("message", job.message)
    return {
        "id": job.external_id or str(job.id),
        "type": job.payload.get("operation_type", job.kind.upper()),
        "status": _STATUS[JobStatus(job.status)],
        "submitted": _iso(job.created_at),
        "started": _iso(job.started_at),
        "finished": _iso(job.finished_at),
        "progress": round(job.progress * 100),
        "parameters": job.payload.get("parameters", {}),
        "details": details,
    }


@router.get("/operations/{operation_id}", name="api:operation")
def get_operation(session: SessionDep, user: ApiUser, operation_id: str) -> dict[str, Any]:
    """One of the caller's operations."""
    return operation_json(get_job(session, owner=user, job_id=operation_id))


@router.get("/operations/{operation_id}/log", name="api:operation_log")
def get_operation_log(session: SessionDep, user: ApiUser, operation_id: str) -> list[dict]:
    """The per-item log of an operation (e.g. which tasks of a batch were created)."""
    job = get_job(session, owner=user, job_id=operation_id)
    return list((job.result or {}).get("log", []))


@router.post("/operations/{operation_id}/cancel", name="api:operation_cancel")
def cancel_operation(session: SessionDep, user: ApiUser, operation_id: str) -> dict[str, Any]:
    """Cancel one of the caller's operations: a pending one at once, a running one at its
    next progress report (at once when its worker stopped); a finished one → 409."""
    return operation_json(request_cancel(session, owner=user, job_id=operation_id))


def batch_create_operation(
    session,
    *,
    user,
    noun: str,
    inputs: list[dict],
    created_ids: dict[int, int],
    failures: dict[int, dict],
    parameters: dict,
    operation_id: str | None,
) -> JSONResponse:
    """Record an async ``<NOUN>.BATCH_CREATE`` as a finished operation with Toloka's log (one
    ``<NOUN>_CREATE`` or ``<NOUN>_VALIDATE`` entry per input), commit, answer 202."""
    key = f"{noun.lower()}_id"
    log = [
        {"type": f"{noun}_CREATE", "success": True, "input": given,
         "output": {key: public_id(created_ids[index])}}
        if index in created_ids
        else {"type": f"{noun}_VALIDATE", "success": False, "input": given,
              "output": failures.get(index, {})}
        for index, given in enumerate(inputs)
    ]  # fmt: skip
    job = record_operation(
        session,
        owner=user,
        operation_type=f"{noun}.BATCH_CREATE",
        parameters=parameters,
        details={"items_count": len(created_ids)},
        log=log,
        external_id=operation_id,
        failed=not created_ids,
    )
    session.commit()
    return JSONResponse(operation_json(job), status_code=202)
