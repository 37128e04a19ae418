"""Toloka's assignment reads: ``GET /api/v1/assignments`` (paged search),
``GET /api/v1/assignments/{id}`` and the results TSV
``GET /api/new/requester/pools/{id}/assignments.tsv`` (what ``get_assignments_df`` reads),
and accept / reject (``PATCH /api/v1/assignments/{id}``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import Response

from app.api.schemas.common import (
    clamp_limit,
    parse_datetime,
    parse_filter_id,
    parse_id,
)
from app.compat.toloka import assignments as compat
from app.db.models import Assignment
from app.deps import ApiRequester, SessionDep
from app.errors import ValidationFailed
from app.services.quality import review

router = APIRouter(tags=["assignments"])

_ID_BOUNDS = ("id_gt", "id_gte", "id_lt", "id_lte")
_DATE_FIELDS = ("created", "submitted", "accepted", "rejected")


@router.get("/api/v1/assignments", name="api:assignments_list")
def list_assignments(
    request: Request,
    session: SessionDep,
    user: ApiRequester,
    status: str | None = None,
    pool_id: str | None = None,
    task_id: str | None = None,
    task_suite_id: str | None = None,
    user_id: str | None = None,
    limit: int | None = Query(None, ge=1, le=100_000),
    sort: str = "id",
) -> dict[str, Any]:
    """Assignments of the caller's pools: ``status`` (comma list), ``pool_id``, ``task_id``,
    ``task_suite_id``, ``user_id``, ``id_*`` and ``created|submitted|accepted|rejected_*``
    ranges; ``sort`` on those fields (``-`` for descending); paged with ``limit``."""
    params = request.query_params
    bounds: dict[str, Any] = {
        name: parse_filter_id(params.get(name), name=name) for name in _ID_BOUNDS
    }
    for field in _DATE_FIELDS:
        for op in ("gt", "gte", "lt", "lte"):
            name = f"{field}_{op}"
            if params.get(name):
                bounds[name] = parse_datetime(params[name], field=name)
    size = clamp_limit(limit)
    rows, has_more = compat.search_assignments(
        session,
        requester=user,
        statuses=compat.parse_statuses(status),
        pool_id=parse_filter_id(pool_id, name="pool_id"),
        task_id=parse_filter_id(task_id, name="task_id"),
        task_suite_id=parse_filter_id(task_suite_id, name="task_suite_id"),
        user_id=parse_filter_id(user_id, name="user_id"),
        bounds=bounds,
        sort=sort,
        limit=size,
    )
    return {"items": compat.assignments_json(session, rows, requester=user), "has_more": has_more}


@router.get("/api/v1/assignments/{assignment_id}", name="api:assignments_get")
def get_assignment(session: SessionDep, user: ApiRequester, assignment_id: str) -> dict[str, Any]:
    """One assignment of the caller's pools, with its tasks and solutions."""
    assignment = compat.get_assignment(
        session, requester=user, assignment_id=parse_id(assignment_id, what="assignment")
    )
    return compat.assignments_json(session, [assignment], requester=user)[0]


@router.get("/api/new/requester/pools/{pool_id}/assignments.tsv", name="api:assignments_tsv")
def assignments_tsv(
    session: SessionDep,
    user: ApiRequester,
    pool_id: str,
    status: str = "APPROVED",
    field: str | None = None,
    startTimeFrom: str | None = None,  # noqa: N803 - Toloka's parameter names
    startTimeTo: str | None = None,  # noqa: N803
) -> Response:
    """Results as TSV, one row per task per assignment (default: accepted only).

    Columns: ``INPUT:*``, ``OUTPUT:result``, ``GOLDEN:result``, ``HINT:text``, then the
    ``ASSIGNMENT:*`` columns named in ``field``; the header row is always sent.
    """
    text = compat.assignments_tsv(
        session,
        requester=user,
        pool_id=parse_id(pool_id, what="pool"),
        statuses=compat.parse_statuses(status) or ["accepted"],
        fields=compat.parse_tsv_fields(field),
        started_from=parse_datetime(startTimeFrom, field="startTimeFrom"),
        started_to=parse_datetime(startTimeTo, field="startTimeTo"),
    )
    return Response(text, media_type="text/tab-separated-values; charset=utf-8")


# --- accept / reject (Toloka's PATCH)


def assignment_json(session, assignment: Assignment, *, requester) -> dict:
    """The assignment in Toloka's shape (shared with ``GET /assignments``)."""
    return compat.assignments_json(session, [assignment], requester=requester)[0]


@router.patch("/api/v1/assignments/{assignment_id}", name="api:assignment:review")
def patch_assignment(
    session: SessionDep, user: ApiRequester, assignment_id: int, body: dict[str, Any] = Body(...)
) -> dict:
    """Accept or reject a suite: ``{"status": "ACCEPTED"|"REJECTED", "public_comment"}``."""
    status = str(body.get("status") or "").upper()
    comment = str(body.get("public_comment") or "")
    current, _pool = review.get_reviewable(session, requester=user, assignment_id=assignment_id)
    if current.status.upper() == status:  # Toloka: no ACCEPTED→ACCEPTED, REJECTED→REJECTED
        raise review.InappropriateStatus(f"The assignment is already {current.status}.")
    if status == "ACCEPTED":
        done = review.accept_assignment(
            session, requester=user, assignment_id=assignment_id, comment=comment
        )
    elif status == "REJECTED":
        done = review.reject_assignment(
            session, requester=user, assignment_id=assignment_id, comment=comment
        )
    else:
        raise ValidationFailed(
            "status is ACCEPTED or REJECTED.", errors={"status": "ACCEPTED or REJECTED."}
        )
    return assignment_json(session, done, requester=user)
