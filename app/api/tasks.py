"""Tasks API in Toloka's v1 shape: batch create (sync or as an operation with a log),
search with ``items``/``has_more`` paging, read, and mark/unmark control tasks."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Query
from fastapi.responses import JSONResponse
from sqlmodel import select

from app.api.operations import batch_create_operation
from app.api.schemas.common import clamp_limit, iso, parse_filter_id, parse_id, public_id
from app.api.schemas.tasks import TaskBody, TaskPatch
from app.db.models import Pool, Task, TaskKind
from app.deps import ApiRequester, SessionDep
from app.errors import NotFound, ValidationFailed
from app.services import answer_sets
from app.services.jobs.operations import check_operation_id
from app.services.projects import (
    control_tasks,
    pool_model,
    pools,
    projects,
    task_overlap,
    uploads,
)
from app.services.projects.upload_formats import TaskInput, is_url
from app.services.text import check_text, check_values
from app.settings import get_settings

router = APIRouter(prefix="/api/v1", tags=["tasks"])


def task_json(task: Task, pool: Pool) -> dict[str, Any]:
    """A task as Toloka returns it; control and training tasks carry ``known_solutions``."""
    base = get_settings().base_url.rstrip("/")
    values = dict(task.input_values or {"image": task.image})
    if isinstance(values.get("image"), str) and values["image"].startswith("/"):
        values["image"] = base + values["image"]
    out: dict[str, Any] = {
        "id": public_id(task.id),
        "pool_id": public_id(task.pool_id),
        "input_values": values,
        "created": iso(task.created_at),
    }
    if task.baseline_solutions:
        out["baseline_solutions"] = task.baseline_solutions
    if task.kind == TaskKind.GENERAL:
        overlap = task.overlap or pool.overlap
        out.update(
            overlap=overlap,
            infinite_overlap=False,
            remaining_overlap=max(0, overlap - task.taken_count),
        )
    else:
        out.update(overlap=None, infinite_overlap=True)
        out["known_solutions"] = [
            {
                "output_values": {"result": answer_sets.output(task.known_answer)},
                "correctness_weight": 1,
            }
        ]
        if task.hint:
            out["message_on_unknown_solution"] = task.hint
    return out


def validate_task(session, user, item: TaskBody, index: int, cache: dict) -> tuple[Pool, TaskInput]:
    """One item → (pool, task input); raises ValidationFailed with Toloka-style field paths."""
    if item.pool_id is None:
        raise ValidationFailed("pool_id is required.", errors={"pool_id": "VALUE_REQUIRED"})
    pool_id = parse_id(item.pool_id, what="pool")
    if pool_id not in cache:
        pool = pools.get_pool(session, requester=user, pool_id=pool_id)
        project = projects.get_project(session, requester=user, project_id=pool.project_id)
        values = [o.value for o in projects.list_options(session, project=project)]
        cache[pool_id] = (pool, (project, values))
    pool, (project, options) = cache[pool_id]
    check_values(item.input_values, field="input_values")
    check_text(item.message_on_unknown_solution, field="message_on_unknown_solution")
    image = item.input_values.get("image")
    if not isinstance(image, str) or not is_url(image):
        raise ValidationFailed(
            "input_values.image must be an http(s) URL.",
            errors={"input_values.image": "VALUE_REQUIRED"},
        )
    known = None
    if item.known_solutions:
        known = item.known_solutions[0].output_values.get("result")
        try:
            known = projects.normalize_answer(project, options, known)
        except answer_sets.BadAnswer as exc:
            raise ValidationFailed(
                f"known_solutions: {known!r}: {exc}.",
                errors={"known_solutions.0.output_values.result": "VALUE_NOT_ALLOWED"},
            ) from None
    baseline = _baseline_solutions(item.baseline_solutions, options, control=known is not None)
    if item.overlap is not None and not 1 <= item.overlap <= 1000:
        raise ValidationFailed("overlap is 1..1000.", errors={"overlap": "VALUE_OUT_OF_RANGE"})
    kind = TaskKind.GENERAL
    if known is not None:
        # Toloka: known solutions make a golden (control) task in a pool and a training
        # task in a training; a hint makes one a training task only where the pool's
        # suites mix in training tasks and no control tasks.
        training = pool.pool_type == "training" or (
            item.message_on_unknown_solution
            and pool.training_per_suite > 0
            and pool.control_per_suite == 0
        )
        kind = TaskKind.TRAINING if training else TaskKind.CONTROL
    return pool, TaskInput(
        image=image,
        known_answer=known,
        hint=item.message_on_unknown_solution,
        overlap=None if known is not None else item.overlap,
        kind=kind,
        input_values=dict(item.input_values),
        baseline_solutions=baseline,
    )


def _baseline_solutions(solutions, options, *, control: bool) -> list | None:
    """``baseline_solutions`` checked: a known option value, a weight in 0..1."""
    if not solutions:
        return None
    if control:
        raise ValidationFailed(
            "baseline_solutions are preliminary answers of general tasks; a control task has "
            "known_solutions.",
            errors={"baseline_solutions": "NOT_SUPPORTED"},
        )
    out = []
    for i, solution in enumerate(solutions):
        value = solution.output_values.get("result")
        if set(solution.output_values) != {"result"} or value not in options:
            raise ValidationFailed(
                f"baseline_solutions: {value!r} is not an answer option value.",
                errors={f"baseline_solutions.{i}.output_values.result": "VALUE_NOT_ALLOWED"},
            )
        if not 0 <= solution.confidence_weight <= 1:
            raise ValidationFailed(
                "baseline_solutions: confidence_weight is between 0 and 1.",
                errors={f"baseline_solutions.{i}.confidence_weight": "VALUE_OUT_OF_RANGE"},
            )
        out.append(
            {"output_values": {"result": value}, "confidence_weight": solution.confidence_weight}
        )
    return out


@router.post("/tasks", name="api:tasks_create", response_model=None)
def create_tasks(
    session: SessionDep,
    user: ApiRequester,
    body: list[TaskBody] | TaskBody = Body(...),
    async_mode: bool = False,
    allow_defaults: bool = False,
    skip_invalid_items: bool = False,
    open_pool: bool = False,
    operation_id: str | None = Query(None, max_length=64),
) -> Any:
    """Create one task (returns it, unless ``async_mode``) or a list.

    In ``async_mode`` (toloka-kit's default) it answers a finished ``TASK.BATCH_CREATE``
    operation whose log echoes each item (with ``__item_idx``); otherwise ``{"items": {idx: task},
    "validation_errors": {idx: {...}}}``. Without ``skip_invalid_items`` one bad item
    refuses the whole batch.
    """
    single = not isinstance(body, list)
    items = [body] if single else body
    check_operation_id(session, external_id=operation_id)
    cache: dict = {}
    valid: list[tuple[int, Pool, TaskInput]] = []
    failures: dict[int, dict] = {}
    for index, item in enumerate(items):
        try:
            pool, task_input = validate_task(session, user, item, index, cache)
        except (ValidationFailed, NotFound) as exc:
            if single or not skip_invalid_items:
                raise
            errors = getattr(exc, "errors", {}) or {"pool_id": "DOES_NOT_EXIST"}
            failures[index] = {k: {"code": v, "message": exc.message} for k, v in errors.items()}
        else:
            valid.append((index, pool, task_input))
    created: dict[int, Task] = {}
    by_pool: dict[int, list[tuple[int, TaskInput]]] = {}
    for index, pool, task_input in valid:
        by_pool.setdefault(pool.id, []).append((index, task_input))
    for pool_id, group in by_pool.items():
        tasks = uploads.add_tasks(
            session, requester=user, pool_id=pool_id, items=[t for _, t in group]
        )
        created.update({index: task for (index, _), task in zip(group, tasks, strict=True)})
        if open_pool and cache[pool_id][0].status != "open":
            pools.launch_pool(session, requester=user, pool_id=pool_id)
    if single and not async_mode:
        task = created[0]
        return JSONResponse(task_json(task, cache[task.pool_id][0]), status_code=201)
    if not async_mode:
        return JSONResponse(
            {
                "items": {
                    str(i): task_json(t, cache[t.pool_id][0]) for i, t in sorted(created.items())
                },
                "validation_errors": {str(i): e for i, e in failures.items()},
            },
            status_code=201,
        )
    return batch_create_operation(
        session,
        user=user,
        noun="TASK",
        inputs=[item.model_dump(mode="json", exclude_none=True) for item in items],
        created_ids={index: task.id for index, task in created.items()},
        failures=failures,
        parameters={
            "skip_invalid_items": skip_invalid_items,
            "allow_defaults": allow_defaults,
            "open_pool": open_pool,
        },
        operation_id=operation_id,
    )


@router.get("/tasks", name="api:tasks_list")
def list_tasks(
    session: SessionDep,
    user: ApiRequester,
    pool_id: str | None = None,
    id_gt: str | None = None,
    id_gte: str | None = None,
    id_lt: str | None = None,
    id_lte: str | None = None,
    limit: int | None = Query(None, ge=1, le=300),
    sort: str = "id",
) -> dict[str, Any]:
    """The caller's tasks (optionally of one pool) by id, paged with ``id_gt``."""
    query = select(Task, Pool).join(Pool, Pool.id == Task.pool_id).where(Pool.owner_id == user.id)
    if pool_id is not None:
        query = query.where(Task.pool_id == parse_filter_id(pool_id, name="pool_id"))
    for name, value, op in (
        ("id_gt", id_gt, "__gt__"),
        ("id_gte", id_gte, "__ge__"),
        ("id_lt", id_lt, "__lt__"),
        ("id_lte", id_lte, "__le__"),
    ):
        bound = parse_filter_id(value, name=name)
        if bound is not None:
            query = query.where(getattr(Task.id, op)(bound))
    size = clamp_limit(limit)
    order = Task.id.desc() if sort.strip().startswith("-") else Task.id
    rows = session.exec(query.order_by(order).limit(size + 1)).all()
    return {
        "items": [task_json(task, pool) for task, pool in rows[:size]],
        "has_more": len(rows) > size,
    }


def _task(session, user, task_id: str) -> tuple[Task, Pool]:
    task = control_tasks.get_task(session, requester=user, task_id=parse_id(task_id, what="task"))
    return task, session.get(Pool, task.pool_id)


@router.get("/tasks/{task_id}", name="api:tasks_get")
def get_task(session: SessionDep, user: ApiRequester, task_id: str) -> dict[str, Any]:
    """One of the caller's tasks (someone else's id → 404)."""
    return task_json(*_task(session, user, task_id))


@router.patch("/tasks/{task_id}", name="api:tasks_patch")
def patch_task(
    session: SessionDep, user: ApiRequester, task_id: str, body: TaskPatch
) -> dict[str, Any]:
    """Mark a control task (``known_solutions``), unmark it (``known_solutions: null``),
    change its overlap, or replace its preliminary answers (``baseline_solutions``)."""
    task, pool = _task(session, user, task_id)
    if "known_solutions" in body.model_fields_set:
        if body.known_solutions:
            answer = body.known_solutions[0].output_values.get("result")
            task = control_tasks.mark_control(
                session, requester=user, task_id=task.id,
                answer=answer if isinstance(answer, list | dict) else str(answer),
            )  # fmt: skip
        else:
            task = control_tasks.unmark_control(session, requester=user, task_id=task.id)
    if "baseline_solutions" in body.model_fields_set:
        project = projects.get_project(session, requester=user, project_id=pool.project_id)
        options = [o.value for o in projects.list_options(session, project=project)]
        checked = _baseline_solutions(
            body.baseline_solutions, options, control=task.kind != TaskKind.GENERAL
        )
        if task.kind == TaskKind.GENERAL:
            task = pool_model.set_baseline_solutions(
                session, requester=user, task_id=task.id, solutions=checked
            )
    if body.overlap is not None and task.kind == TaskKind.GENERAL:
        if not 1 <= body.overlap <= 1000:
            raise ValidationFailed("overlap is 1..1000.", errors={"overlap": "VALUE_OUT_OF_RANGE"})
        task.overlap = body.overlap
        session.add(task)
        session.commit()
    return task_json(task, pool)


@router.patch("/tasks/{task_id}/set-overlap-or-min", name="api:tasks_overlap_or_min")
def set_overlap_or_min(
    session: SessionDep, user: ApiRequester, task_id: str, body: dict[str, Any] = Body(...)
) -> dict[str, Any]:
    """``{"overlap": N}``: the task's overlap becomes N, or the number of labelers who
    already have it if that is more (``overlap: 0`` stops handing it out)."""
    if body.get("infinite_overlap"):
        raise ValidationFailed(
            "Crowdlab gives general tasks a finite overlap; control and training tasks are "
            "already shown to everyone.",
            errors={"infinite_overlap": "NOT_SUPPORTED"},
        )
    unknown = sorted(set(body) - {"overlap", "infinite_overlap"})
    if unknown or not isinstance(body.get("overlap"), int) or isinstance(body["overlap"], bool):
        raise ValidationFailed(
            'Send {"overlap": N}.',
            errors=dict.fromkeys(unknown, "NOT_SUPPORTED") or {"overlap": "VALUE_REQUIRED"},
        )
    task = task_overlap.set_overlap_or_min(
        session, requester=user, task_id=parse_id(task_id, what="task"), overlap=body["overlap"]
    )
    return task_json(task, session.get(Pool, task.pool_id))
