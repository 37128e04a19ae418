"""Pools API in Toloka's v1 shape: create, read, update, open, close, archive; plus
Crowdlab's uploads, budget review, progress and raw answers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Form, Query, UploadFile
from fastapi.responses import JSONResponse, Response

from app.api.operations import operation_json
from app.api.pool_fields import (
    dynamic_overlap_json,
    dynamic_overlap_settings,
    model_json,
    model_settings,
    refuse_unsupported,
    savings_json,
)
from app.api.schemas.common import (
    cents_of,
    clamp_limit,
    dollars,
    iso,
    parse_datetime,
    parse_filter_id,
    parse_id,
    public_id,
)
from app.api.schemas.pools import PoolBody
from app.db.models import Pool, PoolStatus
from app.db.models.pool import PoolType
from app.deps import ApiRequester, SessionDep
from app.errors import ValidationFailed
from app.services.jobs.operations import record_operation
from app.services.projects import overlap_savings, pools, progress, uploads
from app.services.projects.trainings import apply_training_requirement

router = APIRouter(prefix="/api/v1", tags=["pools"])

_EXTRA_KEYS = ("defaults", "mixer_config", "filter", "quality_control", "speed_quality_balance")
# kept and returned as sent (the requester's tags; composed suites go out in creation order)
_ECHOED_KEYS = ("metadata", "assignments_issuing_config")


def _languages(filter_: dict | None) -> list[str]:
    found: list[str] = []

    def walk(node) -> None:
        if isinstance(node, dict):
            if node.get("key") == "languages" and node.get("operator") in ("IN", "EQ"):
                value = node.get("value")
                found.extend(value if isinstance(value, list) else [value])
            for child in node.values():
                walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk(filter_ or {})
    return [str(code) for code in found if code]


def pool_json(pool: Pool) -> dict[str, Any]:
    """A pool as Toloka returns it (status upper case, money in dollars, ids as strings)."""
    extra = pool.extra or {}
    defaults = dict(extra.get("defaults") or {})
    for key in ("default_overlap_for_new_task_suites", "default_overlap_for_new_tasks"):
        if defaults.get(key) or key not in defaults:
            defaults[key] = pool.overlap
    mixer = {
        **(extra.get("mixer_config") or {}),
        "real_tasks_count": pool.general_per_suite,
        "golden_tasks_count": pool.control_per_suite,
        "training_tasks_count": pool.training_per_suite,
    }
    filter_ = extra.get("filter")
    if filter_ is None and pool.filter_languages:
        filter_ = {
            "and": [
                {
                    "or": [
                        {"category": "profile", "key": "languages", "operator": "IN", "value": c}
                        for c in pool.filter_languages
                    ]
                }
            ]
        }
    balance = extra.get("speed_quality_balance")
    if balance is None and pool.min_rating is not None:
        balance = {"type": "TOP_PERCENTAGE_BY_QUALITY", "percent": 100 - pool.min_rating}
    return {
        "id": public_id(pool.id),
        "project_id": public_id(pool.project_id),
        "private_name": pool.name,
        "public_description": pool.public_description,
        "private_comment": pool.private_comment,
        "may_contain_adult_content": pool.adult_content,
        "reward_per_assignment": dollars(pool.reward_cents),
        "assignment_max_duration_seconds": pool.time_limit_seconds,
        "will_expire": iso(pool.expires_at),
        "defaults": defaults,
        "mixer_config": mixer,
        "filter": filter_,
        "speed_quality_balance": balance,
        "quality_control": {
            **(extra.get("quality_control") or {}),
            "configs": pool.quality_rules,
            **({"captcha_frequency": pool.captcha_frequency} if pool.captcha_frequency else {}),
        },
        "auto_accept_solutions": pool.auto_accept,
        "auto_accept_period_day": pool.review_period_days,
        "priority": pool.priority,
        "status": pool.status.upper(),
        "last_close_reason": pool.close_reason,
        "created": iso(pool.created_at),
        "last_started": iso(pool.opened_at),
        "last_stopped": iso(pool.closed_at),
        "type": "TRAINING" if pool.pool_type == PoolType.TRAINING else "REGULAR",
        "fee_percent": pool.fee_percent,
        **({"dynamic_overlap_config": dynamic} if (dynamic := dynamic_overlap_json(pool)) else {}),
        **model_json(pool),
        **{key: extra[key] for key in _ECHOED_KEYS if extra.get(key) is not None},
    }


def _settings(body: PoolBody) -> dict[str, Any]:
    """Toloka pool fields → service settings (only those the body carries)."""
    refuse_unsupported(body)
    sent = body.model_fields_set | set(body.model_extra or {})
    out: dict[str, Any] = {**dynamic_overlap_settings(body), **model_settings(body)}
    if body.private_name is not None:
        out["name"] = body.private_name
    for key, target in (
        ("public_description", "public_description"),
        ("private_comment", "private_comment"),
        ("may_contain_adult_content", "adult_content"),
        ("assignment_max_duration_seconds", "time_limit_seconds"),
        ("auto_accept_solutions", "auto_accept"),
        ("auto_accept_period_day", "review_period_days"),
        ("priority", "priority"),
    ):
        if getattr(body, key) is not None:
            out[target] = getattr(body, key)
    if body.reward_per_assignment is not None:
        out["reward_cents"] = cents_of(body.reward_per_assignment, field="reward_per_assignment")
    if "will_expire" in sent:
        out["expires_at"] = parse_datetime(body.will_expire, field="will_expire")
    if body.defaults is not None:
        overlap = body.defaults.get("default_overlap_for_new_tasks") or body.defaults.get(
            "default_overlap_for_new_task_suites"
        )
        out["overlap"] = int(overlap or 1)
    if body.mixer_config is not None:
        for key, target in (
            ("real_tasks_count", "general_per_suite"),
            ("golden_tasks_count", "control_per_suite"),
            ("training_tasks_count", "training_per_suite"),
        ):
            out[target] = int(body.mixer_config.get(key) or 0)
        if "mix_tasks_in_creation_order" in body.mixer_config:
            out["keep_task_order"] = bool(body.mixer_config["mix_tasks_in_creation_order"])
    if body.filter is not None:
        out["filter_languages"] = _languages(body.filter)
    if body.speed_quality_balance is not None:
        percent = body.speed_quality_balance.get("percent")
        out["min_rating"] = 100 - int(percent) if percent is not None else None
    if body.quality_control is not None:
        configs = body.quality_control.get("configs") or []
        if not isinstance(configs, list):
            raise ValidationFailed(
                "Invalid quality control.", errors={"quality_control.configs": "Expected a list."}
            )
        out["quality_rules"] = configs
        if "captcha_frequency" in body.quality_control:
            out["captcha_frequency"] = body.quality_control["captcha_frequency"]
    if body.type is not None and body.type.upper() == "TRAINING":
        out["pool_type"] = PoolType.TRAINING
    extra = {key: getattr(body, key) for key in _EXTRA_KEYS if getattr(body, key) is not None}
    extra |= {k: v for k, v in (body.model_extra or {}).items() if k in _ECHOED_KEYS and v}
    if "quality_control" in extra:
        extra["quality_control"] = {
            k: v
            for k, v in extra["quality_control"].items()
            if k not in ("configs", "captcha_frequency")
        }
    return {"settings": out, "extra": extra}


def _training_requirement(body: PoolBody) -> dict | None:
    if body.quality_control is None:
        return None
    return body.quality_control.get("training_requirement") or {}


def _pool(session, user, pool_id: str) -> Pool:
    return pools.get_pool(session, requester=user, pool_id=parse_id(pool_id, what="pool"))


@router.post("/pools", status_code=201, name="api:pools_create")
def create_pool(session: SessionDep, user: ApiRequester, body: PoolBody) -> dict[str, Any]:
    """Create a pool (draft until opened) in one of the caller's projects."""
    parsed = _settings(body)
    settings = parsed["settings"]
    name = settings.pop("name", "") or ""
    if body.project_id is None:
        raise ValidationFailed("project_id is required.", errors={"project_id": "Required."})
    pool = pools.create_pool(
        session,
        requester=user,
        project_id=parse_id(body.project_id, what="project"),
        name=name,
        extra=parsed["extra"],
        **settings,
    )
    pool = apply_training_requirement(
        session, requester=user, pool=pool, requirement=_training_requirement(body)
    )
    return pool_json(pool)


@router.get("/pools", name="api:pools_list")
def list_pools(
    session: SessionDep,
    user: ApiRequester,
    project_id: str | None = None,
    status: str | None = None,
    id_gt: str | None = None,
    limit: int | None = Query(None, ge=1, le=300),
    sort: str = "id",
) -> dict[str, Any]:
    """The caller's pools by id, filtered by project and status, paged with ``id_gt``.

    Trainings are listed by ``GET /trainings`` only, as in Toloka (toloka-kit's
    ``clone_project`` recreates what each list gives it)."""
    size = clamp_limit(limit)
    rows = pools.list_pools(
        session,
        requester=user,
        pool_type=PoolType.GENERAL,
        project_id=parse_filter_id(project_id, name="project_id"),
        status=status.lower() if status else None,
        id_gt=parse_filter_id(id_gt, name="id_gt"),
        limit=None if sort.startswith("-") else size + 1,
    )
    if sort.startswith("-"):
        rows.reverse()
    return {"items": [pool_json(p) for p in rows[:size]], "has_more": len(rows) > size}


@router.get("/pools/{pool_id}", name="api:pools_get")
def get_pool(session: SessionDep, user: ApiRequester, pool_id: str) -> dict[str, Any]:
    """One of the caller's pools (someone else's id → 404)."""
    return pool_json(_pool(session, user, pool_id))


@router.put("/pools/{pool_id}", name="api:pools_update")
def update_pool(
    session: SessionDep, user: ApiRequester, pool_id: str, body: PoolBody
) -> dict[str, Any]:
    """Update settings; an open pool keeps its price, overlap and suite composition."""
    pool = _pool(session, user, pool_id)
    parsed = _settings(body)
    extra = {**(pool.extra or {}), **parsed["extra"]}
    updated = pools.update_pool(
        session, requester=user, pool_id=pool.id, extra=extra, **parsed["settings"]
    )
    updated = apply_training_requirement(
        session, requester=user, pool=updated, requirement=_training_requirement(body)
    )
    return pool_json(updated)


_STATE_CHANGES = {
    # action: (status that means "already done", service function, 204 when status is/isn't)
    "open": (PoolStatus.OPEN, pools.launch_pool, True),
    "close": (PoolStatus.OPEN, pools.close_pool, False),
    "archive": (PoolStatus.ARCHIVED, pools.archive_pool, True),
}


def change_pool_state(
    session, user, pool: Pool, action: str, *, prefix: str = "POOL", id_key: str = "pool_id"
) -> Response:
    """Open, close or archive as Toloka does: 204 when already so, else 202 + an operation.

    Shared by pools and trainings (``prefix="TRAINING"``, ``id_key="training_id"``).
    """
    status, change, done_when_equal = _STATE_CHANGES[action]
    if (pool.status == status) == done_when_equal:
        return Response(status_code=204)
    change(session, requester=user, pool_id=pool.id)
    job = record_operation(
        session,
        owner=user,
        operation_type=f"{prefix}.{action.upper()}",
        parameters={id_key: public_id(pool.id)},
    )
    session.commit()
    return JSONResponse(operation_json(job), status_code=202)


@router.post("/pools/{pool_id}/open", name="api:pools_open", response_model=None)
def open_pool(session: SessionDep, user: ApiRequester, pool_id: str) -> Response:
    """Launch: reserve the budget and open (204 when already open; 409 when funds are short)."""
    return change_pool_state(session, user, _pool(session, user, pool_id), "open")


@router.post("/pools/{pool_id}/close", name="api:pools_close", response_model=None)
def close_pool(session: SessionDep, user: ApiRequester, pool_id: str) -> Response:
    """Close by hand and release what was not spent (204 when not open)."""
    return change_pool_state(session, user, _pool(session, user, pool_id), "close")


@router.post("/pools/{pool_id}/archive", name="api:pools_archive", response_model=None)
def archive_pool(session: SessionDep, user: ApiRequester, pool_id: str) -> Response:
    """Archive a draft or closed pool (204 when already archived, 409 when open)."""
    return change_pool_state(session, user, _pool(session, user, pool_id), "archive")


@router.get("/pools/{pool_id}/budget", name="api:pools_budget")
def budget(session: SessionDep, user: ApiRequester, pool_id: str) -> dict[str, Any]:
    """The budget review: suites × price + fee, against the balance."""
    pool = _pool(session, user, pool_id)
    review = pools.review_budget(session, requester=user, pool_id=pool.id)
    return {
        "pool_id": public_id(pool.id),
        "general_tasks": review.general_tasks,
        "control_tasks": review.control_tasks,
        "training_tasks": review.training_tasks,
        "answers": review.answers,
        "suites": review.suites,
        "reward_per_assignment": dollars(review.price_cents),
        "task_cost": dollars(review.task_cost_cents),
        "fee_percent": review.fee_percent,
        "fee": dollars(review.fee_cents),
        "total": dollars(review.total_cents),
        "reserved": dollars(review.reserved_cents),
        "spent": dollars(review.spent_cents),
        "to_reserve": dollars(review.to_reserve_cents),
        "balance": dollars(review.balance_cents),
        "shortfall": dollars(review.shortfall_cents),
        "warnings": review.warnings,
    }


@router.get("/pools/{pool_id}/progress", name="api:pools_progress")
def pool_progress(session: SessionDep, user: ApiRequester, pool_id: str) -> dict[str, Any]:
    """Live figures and the per-labeler table."""
    pool = _pool(session, user, pool_id)
    p = progress.get_pool_progress(session, requester=user, pool_id=pool.id)
    savings = overlap_savings.get_overlap_savings(session, requester=user, pool_id=pool.id)
    return {
        **({"dynamic_overlap": savings_json(savings)} if savings else {}),
        "pool_id": public_id(pool.id),
        "tasks_total": p.tasks_total,
        "tasks_done": p.tasks_done,
        "answers": p.answers,
        "suites_submitted": p.suites_submitted,
        "spent": dollars(p.spent_cents),
        "reserved": dollars(p.reserved_cents),
        "active_labelers": p.active_labelers,
        "average_seconds": p.average_seconds,
        "banned_labelers": p.banned_labelers,
        "labelers": [
            {
                "user_id": public_id(row.labeler_id),
                "suites": row.suites,
                "control_accuracy": row.control_accuracy,
                "majority_agreement": row.majority_agreement,
                "average_seconds": row.average_seconds,
                "status": row.status.upper(),
            }
            for row in p.labelers
        ],
    }


@router.get("/pools/{pool_id}/answers.tsv", name="api:pools_answers_tsv")
def answers_tsv(session: SessionDep, user: ApiRequester, pool_id: str) -> Response:
    """Raw answers as TSV (Toloka raw-results columns: INPUT, OUTPUT, GOLDEN, ASSIGNMENT)."""
    pool = _pool(session, user, pool_id)
    text = progress.export_raw_answers(session, requester=user, pool_id=pool.id)
    return Response(text, media_type="text/tab-separated-values; charset=utf-8")


@router.post("/pools/{pool_id}/uploads", name="api:pools_upload", response_model=None)
def upload(
    session: SessionDep,
    user: ApiRequester,
    pool_id: str,
    kind: str = Form(..., description="tsv, images, zip, or media (images stored only)"),
    files: list[UploadFile] = Form(...),
    general_count: int = Form(0, ge=0),
    create_missing_options: bool = Form(False),
    skip_bad: bool = Form(False, description="import the good rows/files, list the bad"),
) -> Any:
    """Upload a task TSV, images or a ZIP of class folders (all or nothing, unless
    ``skip_bad``: then the bad rows or files are left out and listed in ``skipped``), or
    images stored only (``media``) for a TSV to name by file name.

    Small uploads answer ``{"created": {...}}``; large ones, and TSVs naming image URLs
    (checked in the background), a running operation (202).
    """
    pool = _pool(session, user, pool_id)
    data = [(f.filename or f"file{i}", f.file) for i, f in enumerate(files)]
    outcome = uploads.submit_upload(
        session,
        requester=user,
        pool_id=pool.id,
        kind=kind,
        files=data,
        general_count=general_count,
        create_missing_options=create_missing_options,
        skip_bad=skip_bad,
    )
    if outcome.job is not None:
        session.refresh(outcome.job)
        return JSONResponse(operation_json(outcome.job), status_code=202)
    return JSONResponse(outcome.result.as_dict(), status_code=201)
