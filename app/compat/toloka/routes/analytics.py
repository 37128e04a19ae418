"""Toloka's pool analytics (``POST /api/staging/analytics-2``) as a finished operation."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body
from fastapi.responses import JSONResponse

from app.api.operations import operation_json
from app.compat.toloka.shapes import iso, run_analytics
from app.deps import ApiRequester, SessionDep
from app.services.jobs.operations import record_operation

router = APIRouter(prefix="/api/staging", tags=["analytics"])


@router.post("/analytics-2", name="api:analytics")
def analytics(
    session: SessionDep, user: ApiRequester, body: list[dict[str, Any]] = Body(...)
) -> JSONResponse:
    """Compute pool figures (``completion_percentage`` → ``{"value": pct}``, counts, spend).

    Answers an ``ANALYTICS`` operation, already ``SUCCESS``, whose ``details.value`` holds
    one ``{request, result, finished}`` per request; ``GET /v1/operations/{id}`` reads it back.
    """
    results = run_analytics(session, requester=user, requests=body)
    job = record_operation(
        session, owner=user, operation_type="ANALYTICS", parameters={"value": body}
    )
    for item in results:
        item["finished"] = iso(job.finished_at)
    job.result = {"value": results, "log": []}
    session.add(job)
    session.commit()
    return JSONResponse(operation_json(job), status_code=202)
