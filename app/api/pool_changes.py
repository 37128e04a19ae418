"""Toloka's pool calls beside create/update: ``PATCH /pools/{id}`` (priority) and
``POST /pools/{id}/clone`` (a ``POOL.CLONE`` operation)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body
from fastapi.responses import JSONResponse

from app.api.operations import operation_json
from app.api.pools import pool_json
from app.api.schemas.common import parse_id, public_id
from app.deps import ApiRequester, SessionDep
from app.errors import ValidationFailed
from app.services.jobs.operations import record_operation
from app.services.projects import pools
from app.services.projects.pool_clone import clone_pool

router = APIRouter(prefix="/api/v1", tags=["pools"])

PATCHABLE = ("priority",)


@router.patch("/pools/{pool_id}", name="api:pools_patch")
def patch_pool(
    session: SessionDep, user: ApiRequester, pool_id: str, body: dict[str, Any] = Body(...)
) -> dict[str, Any]:
    """Change the pool's ``priority`` (-100..100; labelers see higher ones first), also
    while it is open. Other keys are refused: ``PUT`` updates the rest."""
    unknown = sorted(set(body) - set(PATCHABLE))
    if unknown:
        raise ValidationFailed(
            f"PATCH changes only priority here; use PUT for {', '.join(unknown)}.",
            errors=dict.fromkeys(unknown, "NOT_SUPPORTED"),
        )
    priority = body.get("priority")
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise ValidationFailed("priority is an integer.", errors={"priority": "INVALID_VALUE"})
    pool = pools.update_pool(
        session, requester=user, pool_id=parse_id(pool_id, what="pool"), priority=priority
    )
    return pool_json(pool)


def clone_operation(session, user, pool_id: str, *, prefix: str, id_key: str) -> JSONResponse:
    """Clone and answer a finished ``<prefix>.CLONE`` operation (new id in ``details``)."""
    source_id = parse_id(pool_id, what=id_key.removesuffix("_id"))
    clone = clone_pool(session, requester=user, pool_id=source_id)
    job = record_operation(
        session,
        owner=user,
        operation_type=f"{prefix}.CLONE",
        parameters={id_key: public_id(source_id)},
        details={id_key: public_id(clone.id)},
    )
    session.commit()
    return JSONResponse(operation_json(job), status_code=202)


@router.post("/pools/{pool_id}/clone", name="api:pools_clone")
def clone(session: SessionDep, user: ApiRequester, pool_id: str) -> JSONResponse:
    """An empty draft copy of the pool in the same project (settings, rules, filters)."""
    return clone_operation(session, user, pool_id, prefix="POOL", id_key="pool_id")
