"""Task suites in Toloka's shape: ``POST /api/v1/task-suites`` (one or a list, sync or as a
``TASK_SUITE.BATCH_CREATE`` operation with a log) and ``GET /api/v1/task-suites``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from app.api.operations import batch_create_operation
from app.api.schemas.common import clamp_limit, iso, parse_filter_id, parse_id, public_id
from app.api.schemas.tasks import TaskBody
from app.api.tasks import validate_task
from app.db.models import Pool, Task, TaskKind, TaskSuite
from app.deps import ApiRequester, SessionDep
from app.errors import CrowdlabError, NotFound, ValidationFailed
from app.services import answer_sets
from app.services.jobs.operations import check_operation_id
from app.services.projects import pools, task_suites
from app.settings import get_settings

router = APIRouter(prefix="/api/v1", tags=["task suites"])

# Toloka suite keys Crowdlab does not act on: refused when they carry a value.
_UNSUPPORTED = (
    "reserved_for",
    "unavailable_for",
    "issuing_order_override",
    "traits_all_of",
    "traits_any_of",
    "traits_none_of_any",
    "longitude",
    "latitude",
)
_READ_ONLY = ("id", "remaining_overlap", "automerged", "created", "mixed", "__item_idx")


def _suite_task_json(task: Task) -> dict[str, Any]:
    base = get_settings().base_url.rstrip("/")
    values = dict(task.input_values or {"image": task.image})
    if isinstance(values.get("image"), str) and values["image"].startswith("/"):
        values["image"] = base + values["image"]
    out: dict[str, Any] = {"id": public_id(task.id), "input_values": values}
    if task.kind != TaskKind.GENERAL:
        out["known_solutions"] = [
            {
                "output_values": {"result": answer_sets.output(task.known_answer)},
                "correctness_weight": 1,
            }
        ]
        if task.hint:
            out["message_on_unknown_solution"] = task.hint
    return out


def task_suite_json(suite: TaskSuite, tasks: list[Task]) -> dict[str, Any]:
    """A composed suite as Toloka returns it."""
    return {
        "id": public_id(suite.id),
        "pool_id": public_id(suite.pool_id),
        "overlap": suite.overlap,
        "infinite_overlap": False,
        "remaining_overlap": task_suites.remaining_overlap(suite, tasks),
        "tasks": [_suite_task_json(t) for t in tasks],
        "mixed": False,
        "automerged": False,
        "created": iso(suite.created_at),
    }


def _parse_suite(session, user, raw: Any, allow_defaults: bool, cache: dict):
    """One body object → (pool, SuiteInput); raises ValidationFailed/NotFound."""
    if not isinstance(raw, dict):
        raise ValidationFailed("A task suite is an object.", errors={"request": "INVALID_VALUE"})
    refused = [k for k in _UNSUPPORTED if raw.get(k) not in (None, [], "")]
    if raw.get("infinite_overlap"):
        refused.append("infinite_overlap")
    unknown = set(raw) - {"pool_id", "tasks", "overlap", "infinite_overlap", *_UNSUPPORTED,
                          *_READ_ONLY}  # fmt: skip
    refused += sorted(unknown)
    if refused:
        raise ValidationFailed(
            f"Crowdlab does not support {', '.join(refused)} on task suites.",
            errors=dict.fromkeys(refused, "NOT_SUPPORTED"),
        )
    if raw.get("pool_id") in (None, ""):
        raise ValidationFailed("pool_id is required.", errors={"pool_id": "VALUE_REQUIRED"})
    pool_id = parse_id(raw["pool_id"], what="pool")
    if pool_id not in cache:
        cache[pool_id] = pools.get_pool(session, requester=user, pool_id=pool_id)
    pool: Pool = cache[pool_id]
    overlap = raw.get("overlap")
    if overlap is None:
        if not allow_defaults:
            raise ValidationFailed(
                "overlap is required (or allow_defaults).", errors={"overlap": "VALUE_REQUIRED"}
            )
        overlap = pool.overlap
    if not isinstance(overlap, int) or isinstance(overlap, bool):
        raise ValidationFailed("overlap is an integer.", errors={"overlap": "INVALID_VALUE"})
    inputs = []
    task_cache = cache.setdefault("tasks", {})
    for index, task in enumerate(raw.get("tasks") or []):
        if isinstance(task, dict) and task.get("overlap") not in (None, overlap):
            raise ValidationFailed(
                "A task in a suite goes out with the suite: set the suite's overlap.",
                errors={f"tasks.{index}.overlap": "NOT_SUPPORTED"},
            )
        try:
            body = TaskBody.model_validate({**(task or {}), "pool_id": pool_id})
        except ValidationError:
            raise ValidationFailed(
                "Invalid task.", errors={f"tasks.{index}": "INVALID_VALUE"}
            ) from None
        try:
            _pool, task_input = validate_task(session, user, body, index, task_cache)
        except ValidationFailed as exc:
            raise ValidationFailed(
                exc.message, errors={f"tasks.{index}.{k}": v for k, v in exc.errors.items()}
            ) from None
        inputs.append(task_input)
    return pool, task_suites.SuiteInput(overlap=overlap, tasks=inputs)


def _errors(exc: CrowdlabError) -> dict:
    errors = getattr(exc, "errors", None) or {"pool_id": "DOES_NOT_EXIST"}
    return {k: {"code": str(v), "message": exc.message} for k, v in errors.items()}


@router.post("/task-suites", name="api:task_suites_create", response_model=None)
def create_task_suites(
    session: SessionDep,
    user: ApiRequester,
    body: Any = Body(...),
    async_mode: bool = False,
    allow_defaults: bool = False,
    skip_invalid_items: bool = False,
    open_pool: bool = False,
    operation_id: str | None = Query(None, max_length=64),
) -> Any:
    """Create task suites: each goes out whole, ``overlap`` times (the pool then holds only
    composed suites). ``async_mode`` answers a finished ``TASK_SUITE.BATCH_CREATE``
    operation whose log gives each ``task_suite_id``; otherwise one suite → the suite, a
    list → ``{items, validation_errors}``."""
    single = not isinstance(body, list)
    raws = [body] if single else body
    check_operation_id(session, external_id=operation_id)
    cache: dict = {}
    valid: dict[int, tuple[Pool, task_suites.SuiteInput]] = {}
    failures: dict[int, dict] = {}
    for index, raw in enumerate(raws):
        try:
            valid[index] = _parse_suite(session, user, raw, allow_defaults, cache)
        except (ValidationFailed, NotFound) as exc:
            if single or not skip_invalid_items:
                raise
            failures[index] = _errors(exc)
    created: dict[int, tuple[TaskSuite, list[Task]]] = {}
    by_pool: dict[int, list[int]] = {}
    for index, (pool, _suite) in valid.items():
        by_pool.setdefault(pool.id, []).append(index)
    for pool_id, indexes in by_pool.items():
        made = task_suites.create_task_suites(
            session,
            requester=user,
            pool_id=pool_id,
            suites=[valid[i][1] for i in indexes],
        )
        created.update(zip(indexes, made, strict=True))
        if open_pool and cache[pool_id].status != "open":
            pools.launch_pool(session, requester=user, pool_id=pool_id)
    if not async_mode:
        if single:
            return JSONResponse(task_suite_json(*created[0]), status_code=201)
        return JSONResponse(
            {
                "items": {str(i): task_suite_json(*c) for i, c in sorted(created.items())},
                "validation_errors": {str(i): e for i, e in sorted(failures.items())},
            },
            status_code=201,
        )
    return batch_create_operation(
        session,
        user=user,
        noun="TASK_SUITE",
        inputs=[raw if isinstance(raw, dict) else {} for raw in raws],
        created_ids={index: made[0].id for index, made in created.items()},
        failures=failures,
        parameters={
            "skip_invalid_items": skip_invalid_items,
            "allow_defaults": allow_defaults,
            "open_pool": open_pool,
        },
        operation_id=operation_id,
    )


@router.get("/task-suites", name="api:task_suites_list")
def list_task_suites(
    request: Request,
    session: SessionDep,
    user: ApiRequester,
    pool_id: str | None = None,
    limit: int | None = Query(None, ge=1, le=300),
    sort: str = "id",
) -> dict[str, Any]:
    """The caller's composed task suites (of one pool), by id, paged with ``id_gt``."""
    if sort.strip().lstrip("+-") != "id":
        raise ValidationFailed("Task suites sort by id.", errors={"sort": "NOT_SUPPORTED"})
    size = clamp_limit(limit)
    params = request.query_params
    bounds = {op: parse_filter_id(params.get(f"id_{op}"), name=f"id_{op}")
              for op in ("gt", "gte", "lt", "lte")}  # fmt: skip
    found = task_suites.list_task_suites(
        session,
        requester=user,
        pool_id=parse_filter_id(pool_id, name="pool_id"),
        id_bounds=bounds,
        descending=sort.strip().startswith("-"),
        limit=size + 1,
    )
    return {
        "items": [task_suite_json(s, tasks) for s, _pool, tasks in found[:size]],
        "has_more": len(found) > size,
    }


@router.get("/task-suites/{suite_id}", name="api:task_suites_get")
def get_task_suite(session: SessionDep, user: ApiRequester, suite_id: str) -> dict[str, Any]:
    """One of the caller's composed task suites."""
    number = parse_id(suite_id, what="task suite")
    found = task_suites.list_task_suites(
        session, requester=user, id_bounds={"gte": number, "lte": number}, limit=1
    )
    if not found:
        raise NotFound("No such task suite.")
    suite, _pool, tasks = found[0]
    return task_suite_json(suite, tasks)
