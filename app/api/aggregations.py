"""Aggregation API: Toloka's aggregated solutions plus Crowdlab's runs and TSV."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response

from app.api.operations import operation_json
from app.api.schemas.aggregations import (
    AggregateByPool,
    AggregateByTask,
    AggregationCreate,
    AggregationRunPublic,
)
from app.api.schemas.common import parse_id
from app.db.models import AggregationRun
from app.deps import ApiRequester, SessionDep
from app.errors import ValidationFailed
from app.services import answer_sets
from app.services.aggregations import by_task
from app.services.aggregations import runs as svc
from app.services.projects.progress import public_id

router = APIRouter(prefix="/api/v1", tags=["aggregations"])


def _iso(value) -> str | None:
    return value.replace(tzinfo=None).isoformat(timespec="milliseconds") if value else None


def _int_filter(name: str, value: str | None) -> int | None:
    if value is None or value == "":
        return None
    if not value.strip().isdigit():
        raise ValidationFailed("Invalid filter.", errors={name: "Expected a task id."})
    return int(value)


def _run_json(session, run: AggregationRun) -> dict[str, Any]:
    job = svc.get_run_job(session, run=run)
    report = ((job.result or {}).get("calibration") if job else None) or {}
    return AggregationRunPublic(
        id=public_id(run.id),
        pool_id=public_id(run.pool_id),
        method=run.method,
        status=run.status,
        operation_id=(job.external_id or str(job.id)) if job else None,
        use_known=bool((run.params or {}).get("use_known", True)),
        task_count=run.task_count,
        unanswered_count=run.unanswered_count,
        answer_count=run.answer_count,
        mean_confidence=run.mean_confidence,
        error=run.error,
        created=_iso(run.created_at),
        started=_iso(run.started_at),
        finished=_iso(run.finished_at),
        duration_seconds=svc.run_duration_seconds(run),
        method_used=report.get("method_used"),
        confidence_calibrated=report.get("calibrated"),
        heldout_ece=report.get("heldout_ece"),
    ).model_dump()


@router.post("/aggregated-solutions/aggregate-by-pool", name="api:aggregate_by_pool")
def aggregate_by_pool(
    session: SessionDep,
    user: ApiRequester,
    body: AggregateByPool,
    operation_id: str | None = Query(None, max_length=64),
) -> JSONResponse:
    """Start aggregating a pool; answers a Toloka ``SOLUTION.AGGREGATE`` operation (202)."""
    kind = body.type.strip().upper()
    if kind not in svc.TOLOKA_TYPES:
        choices = ", ".join(svc.TOLOKA_TYPES)
        raise ValidationFailed("Unknown aggregation type.", errors={"type": f"One of: {choices}."})
    if len(body.fields) != 1:
        raise ValidationFailed(
            "Exactly one field can be aggregated.", errors={"fields": "Give one output field."}
        )
    run = svc.start_aggregation(
        session,
        requester=user,
        pool_id=str(body.pool_id),
        method=svc.TOLOKA_TYPES[kind],
        output_field=body.fields[0].name,
        external_id=operation_id,
    )
    _, job = svc.get_run_for_operation(session, requester=user, operation_id=str(run.job_id))
    return JSONResponse(operation_json(job), status_code=202)


@router.post("/aggregated-solutions/aggregate-by-task", name="api:aggregate_by_task")
def aggregate_by_task(session: SessionDep, user: ApiRequester, body: AggregateByTask) -> dict:
    """One task's label now, each answer weighted by its labeler's value of
    ``answer_weight_skill_id`` (``WEIGHTED_DYNAMIC_OVERLAP``, Toloka's aggregation by skill)."""
    if body.type.strip().upper() != "WEIGHTED_DYNAMIC_OVERLAP":
        raise ValidationFailed(
            "A single task is aggregated by skill (WEIGHTED_DYNAMIC_OVERLAP); aggregate "
            "the pool for other methods.",
            errors={"type": "NOT_SUPPORTED"},
        )
    if [f.name for f in body.fields] != ["result"]:
        raise ValidationFailed(
            "Crowdlab tasks have one output field, result.", errors={"fields": "NOT_SUPPORTED"}
        )
    found = by_task.aggregate_task(
        session,
        requester=user,
        pool_id=parse_id(body.pool_id, what="pool"),
        task_id=parse_id(body.task_id, what="task"),
        skill_id=parse_id(body.answer_weight_skill_id, what="skill"),
    )
    return {
        "pool_id": public_id(found.pool_id),
        "task_id": public_id(found.task_id),
        "confidence": round(found.confidence, 6),
        "output_values": {"result": found.label},
        "answers_count": found.answers,
    }


@router.get("/aggregated-solutions/{operation_id}", name="api:aggregated_solutions")
def aggregated_solutions(
    session: SessionDep,
    user: ApiRequester,
    operation_id: str,
    sort: str = Query("task_id"),
    limit: int = Query(50, ge=1, le=svc.PAGE_LIMIT_MAX),
    task_id_gt: str | None = None,
    task_id_gte: str | None = None,
    task_id_lt: str | None = None,
    task_id_lte: str | None = None,
) -> dict[str, Any]:
    """A page of an aggregation's results, ordered by ``task_id`` (``-task_id`` descending)."""
    if sort.strip() not in ("task_id", "-task_id"):
        raise ValidationFailed("Invalid sort.", errors={"sort": "Sort by task_id or -task_id."})
    run, _job = svc.get_run_for_operation(session, requester=user, operation_id=operation_id)
    gt, gte = _int_filter("task_id_gt", task_id_gt), _int_filter("task_id_gte", task_id_gte)
    lt, lte = _int_filter("task_id_lt", task_id_lt), _int_filter("task_id_lte", task_id_lte)
    lower = max(x for x in (gt, None if gte is None else gte - 1, -1) if x is not None)
    upper = min((x for x in (lt, None if lte is None else lte + 1) if x is not None), default=None)
    rows, has_more = svc.page_labels(
        session,
        run=run,
        limit=limit,
        task_id_gt=lower,
        task_id_lt=upper,
        descending=sort.strip().startswith("-"),
    )
    field = str((run.params or {}).get("output_field") or "result")
    items = [
        {
            "pool_id": public_id(run.pool_id),
            "task_id": public_id(row.task_id),
            "confidence": row.confidence,
            "output_values": {field: answer_sets.output(row.value)},
            # several answers: each option's probability of being in the set (Crowdlab)
            **({"option_confidence": row.option_confidence} if row.option_confidence else {}),
        }
        for row in rows
    ]
    return {"items": items, "has_more": has_more and bool(items)}


@router.get("/pools/{pool_id}/aggregations", name="api:pool_aggregations")
def pool_aggregations(session: SessionDep, user: ApiRequester, pool_id: str) -> dict[str, Any]:
    """A pool's aggregation runs, newest first."""
    runs = svc.list_runs(session, requester=user, pool_id=pool_id)
    return {"items": [_run_json(session, run) for run in runs], "has_more": False}


@router.post("/pools/{pool_id}/aggregations", name="api:start_aggregation")
def start_pool_aggregation(
    session: SessionDep, user: ApiRequester, pool_id: str, body: AggregationCreate
) -> JSONResponse:
    """Start a run by Crowdlab method name: ds, mv, one_coin_ds, glad or wawa."""
    run = svc.start_aggregation(
        session, requester=user, pool_id=pool_id, method=body.method, use_known=body.use_known
    )
    return JSONResponse(_run_json(session, run), status_code=202)


@router.get("/aggregations/{run_id}", name="api:aggregation")
def get_aggregation(session: SessionDep, user: ApiRequester, run_id: str) -> dict[str, Any]:
    """One run with its figures."""
    return _run_json(session, svc.get_run(session, requester=user, run_id=run_id))


def _tsv(body: str, filename: str) -> Response:
    return Response(
        body,
        media_type="text/tab-separated-values; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/aggregations/{run_id}/results.tsv", name="api:aggregation_tsv")
def aggregation_tsv(session: SessionDep, user: ApiRequester, run_id: str) -> Response:
    """``INPUT:image  OUTPUT:result  CONFIDENCE:result``, one row per answered general task."""
    run = svc.get_run(session, requester=user, run_id=run_id)
    return _tsv(svc.build_results_tsv(session, run=run), f"aggregation-{run.id}.tsv")


@router.get("/aggregations/{run_id}/unanswered.tsv", name="api:aggregation_unanswered_tsv")
def aggregation_unanswered_tsv(session: SessionDep, user: ApiRequester, run_id: str) -> Response:
    """``INPUT:image`` of the general tasks nobody answered."""
    run = svc.get_run(session, requester=user, run_id=run_id)
    return _tsv(svc.build_unanswered_tsv(session, run=run), f"aggregation-{run.id}-unanswered.tsv")
