"""Toloka trainings (``/api/v1/trainings``): Crowdlab training pools.

A training is a pool of type ``training`` (same id space as pools, so ``/pools/{id}``
works with a training id too); its tasks are training tasks (known answer + hint).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Query
from fastapi.responses import JSONResponse, Response

from app.api.pool_changes import clone_operation
from app.api.pools import change_pool_state
from app.api.schemas.common import clamp_limit, parse_filter_id, parse_id, public_id
from app.compat.toloka.shapes import iso
from app.db.models import Pool
from app.db.models.pool import PoolType
from app.deps import ApiRequester, SessionDep
from app.errors import NotFound, ValidationFailed
from app.services.projects import pools
from app.services.projects.trainings import is_training

router = APIRouter(prefix="/api/v1", tags=["trainings"])

# Toloka training keys Crowdlab keeps (echoed) but does not act on.
_KEPT = (
    "shuffle_tasks_in_task_suite",
    "task_suites_required_to_pass",
    "retry_training_after_days",
    "inherited_instructions",
    "public_instructions",
    "metadata",
)


def training_json(pool: Pool) -> dict[str, Any]:
    """A training pool in Toloka's Training shape."""
    kept = (pool.extra or {}).get("training") or {}
    return {
        **{key: kept.get(key) for key in _KEPT if key in kept},
        "id": public_id(pool.id),
        "project_id": public_id(pool.project_id),
        "private_name": pool.name,
        "private_comment": pool.private_comment,
        "may_contain_adult_content": pool.adult_content,
        "assignment_max_duration_seconds": pool.time_limit_seconds,
        "mix_tasks_in_creation_order": pool.keep_task_order,
        "training_tasks_in_task_suite_count": pool.training_per_suite,
        "status": pool.status.upper(),
        "last_close_reason": pool.close_reason,
        "created": iso(pool.created_at),
        "last_started": iso(pool.opened_at),
        "last_stopped": iso(pool.closed_at),
        "type": "TRAINING",
    }


def _settings(body: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if body.get("private_name") is not None:
        out["name"] = str(body["private_name"])
    for key, target, kind in (
        ("private_comment", "private_comment", str),
        ("may_contain_adult_content", "adult_content", bool),
        ("assignment_max_duration_seconds", "time_limit_seconds", int),
        ("mix_tasks_in_creation_order", "keep_task_order", bool),
        ("training_tasks_in_task_suite_count", "training_per_suite", int),
    ):
        if body.get(key) is not None:
            try:
                out[target] = kind(body[key])
            except (TypeError, ValueError):
                raise ValidationFailed(f"Invalid {key}.", errors={key: "INVALID_VALUE"}) from None
    kept = {key: body[key] for key in _KEPT if key in body}
    if kept:
        out["extra"] = {"training": kept}
    return out


def _training(session, user, training_id: str) -> Pool:
    pool = pools.get_pool(session, requester=user, pool_id=parse_id(training_id, what="training"))
    if not is_training(pool):
        raise NotFound("No such training.")
    return pool


@router.post("/trainings", status_code=201, name="api:trainings_create")
def create_training(
    session: SessionDep, user: ApiRequester, body: dict[str, Any] = Body(...)
) -> dict[str, Any]:
    """Create a training pool (a draft until opened) in one of the caller's projects."""
    if body.get("project_id") is None:
        raise ValidationFailed("project_id is required.", errors={"project_id": "VALUE_REQUIRED"})
    settings = _settings(body)
    name = settings.pop("name", "") or ""
    pool = pools.create_pool(
        session,
        requester=user,
        project_id=parse_id(body["project_id"], what="project"),
        name=name,
        overlap=1,
        reward_cents=0,
        general_per_suite=0,
        control_per_suite=0,
        pool_type=PoolType.TRAINING,
        **{"training_per_suite": 1, **settings},
    )
    return training_json(pool)


@router.get("/trainings", name="api:trainings_list")
def list_trainings(
    session: SessionDep,
    user: ApiRequester,
    project_id: str | None = None,
    status: str | None = None,
    id_gt: str | None = None,
    limit: int | None = Query(None, ge=1, le=300),
) -> dict[str, Any]:
    """The caller's trainings by id, paged with ``id_gt``."""
    size = clamp_limit(limit)
    rows = [
        p
        for p in pools.list_pools(
            session,
            requester=user,
            project_id=parse_filter_id(project_id, name="project_id"),
            status=status.lower() if status else None,
            id_gt=parse_filter_id(id_gt, name="id_gt"),
        )
        if is_training(p)
    ]
    return {"items": [training_json(p) for p in rows[:size]], "has_more": len(rows) > size}


@router.get("/trainings/{training_id}", name="api:trainings_get")
def get_training(session: SessionDep, user: ApiRequester, training_id: str) -> dict[str, Any]:
    """One of the caller's trainings."""
    return training_json(_training(session, user, training_id))


@router.put("/trainings/{training_id}", name="api:trainings_update")
def update_training(
    session: SessionDep, user: ApiRequester, training_id: str, body: dict[str, Any] = Body(...)
) -> dict[str, Any]:
    """Update a training's settings (read-only keys sent back by the client are ignored)."""
    pool = _training(session, user, training_id)
    settings = _settings(body)
    if "extra" in settings:
        settings["extra"] = {**(pool.extra or {}), **settings["extra"]}
    return training_json(pools.update_pool(session, requester=user, pool_id=pool.id, **settings))


def _change(session, user, training_id: str, action: str) -> Response:
    pool = _training(session, user, training_id)
    return change_pool_state(session, user, pool, action, prefix="TRAINING", id_key="training_id")


@router.post("/trainings/{training_id}/open", name="api:trainings_open", response_model=None)
def open_training(session: SessionDep, user: ApiRequester, training_id: str) -> Response:
    """Open (204 when already open)."""
    return _change(session, user, training_id, "open")


@router.post("/trainings/{training_id}/close", name="api:trainings_close", response_model=None)
def close_training(session: SessionDep, user: ApiRequester, training_id: str) -> Response:
    """Close (204 when not open)."""
    return _change(session, user, training_id, "close")


@router.post("/trainings/{training_id}/archive", name="api:trainings_archive", response_model=None)
def archive_training(session: SessionDep, user: ApiRequester, training_id: str) -> Response:
    """Archive a closed training (204 when already archived)."""
    return _change(session, user, training_id, "archive")


@router.post("/trainings/{training_id}/clone", name="api:trainings_clone")
def clone_training(session: SessionDep, user: ApiRequester, training_id: str) -> JSONResponse:
    """An empty draft copy of the training (a ``TRAINING.CLONE`` operation)."""
    _training(session, user, training_id)
    return clone_operation(session, user, training_id, prefix="TRAINING", id_key="training_id")
