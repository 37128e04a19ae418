"""Quality-control JSON API in Toloka's shapes: user restrictions, skills, user skills,
assignment review (PATCH) and a pool's quality rules."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Body, Query
from fastapi.responses import JSONResponse, Response

from app.api.schemas.common import cents_of
from app.db.models import Ban, Skill, UserSkill
from app.deps import ApiRequester, SessionDep
from app.errors import ValidationFailed
from app.services.projects.progress import public_id
from app.services.quality import banned_answers, bans, dry_run, pool_rules, skills

router = APIRouter(prefix="/api/v1", tags=["quality"])


def _ts(value: datetime | None) -> str | None:
    """Toloka's timestamp form: naive UTC with milliseconds."""
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}"


def _parse_ts(raw: Any, field: str) -> datetime | None:
    if raw in (None, ""):
        return None
    try:
        value = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        raise ValidationFailed(f"{field} is not a date.", errors={field: "Not a date."}) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _int(raw: Any, field: str) -> int | None:
    if raw in (None, ""):
        return None
    try:
        return int(str(raw))
    except ValueError:
        raise ValidationFailed(f"{field} must be an id.", errors={field: "Not an id."}) from None


def _page(items: list, limit: int) -> dict:
    return {"items": items[:limit], "has_more": len(items) > limit}


# ---------------------------------------------------------------- user restrictions


def restriction_json(ban: Ban) -> dict:
    return {
        "id": public_id(ban.id),
        "scope": ban.scope.upper(),
        "user_id": public_id(ban.labeler_id),
        "project_id": public_id(ban.project_id) if ban.project_id else None,
        "pool_id": public_id(ban.pool_id) if ban.pool_id else None,
        "private_comment": ban.private_comment,
        "public_comment": ban.public_comment,
        "will_expire": _ts(ban.expires_at),
        "created": _ts(ban.created_at),
        "lifted": _ts(ban.lifted_at),
        "source": ban.source,
    }


@router.get("/user-restrictions", name="api:user_restrictions")
def list_restrictions(
    session: SessionDep,
    user: ApiRequester,
    user_id: str | None = None,
    project_id: str | None = None,
    pool_id: str | None = None,
    scope: str | None = None,
    id_gt: str | None = None,
    limit: int = Query(50, ge=1, le=500),
) -> dict:
    """Bans, oldest first, paged by id (``id_gt``)."""
    found = bans.list_bans(
        session,
        requester=user,
        labeler_id=_int(user_id, "user_id"),
        project_id=_int(project_id, "project_id"),
        pool_id=_int(pool_id, "pool_id"),
        scope=scope,
        after_id=_int(id_gt, "id_gt") or 0,
        limit=limit + 1,
    )
    return _page([restriction_json(b) for b in found], limit)


@router.put("/user-restrictions", status_code=201, name="api:user_restrictions:set")
def set_restriction(
    session: SessionDep, user: ApiRequester, body: dict[str, Any] = Body(...)
) -> dict:
    """Ban a labeler (``will_expire`` null = permanent; or ``duration`` + ``duration_unit``)."""
    if "scope" not in body:
        raise ValidationFailed("scope is required.", errors={"scope": "Required."})
    labeler_id = _int(body.get("user_id"), "user_id")
    if labeler_id is None:
        raise ValidationFailed("user_id is required.", errors={"user_id": "Required."})
    expires_at = _parse_ts(body.get("will_expire"), "will_expire")
    unit = body.get("duration_unit") or ("DAYS" if body.get("duration") else "PERMANENT")
    ban = bans.ban_labeler(
        session,
        requester=user,
        labeler_id=labeler_id,
        scope=body["scope"],
        pool_id=_int(body.get("pool_id"), "pool_id"),
        project_id=_int(body.get("project_id"), "project_id"),
        duration=_int(body.get("duration"), "duration"),
        duration_unit=unit if expires_at is None else "DAYS",
        expires_at=expires_at,
        private_comment=str(body.get("private_comment") or ""),
        public_comment=str(body.get("public_comment") or ""),
    )
    out = restriction_json(ban)
    # A ban leaves finished pools as they are; say where the answers still count and
    # what excluding them would cost (``POST /pools/{id}/banned-answers/exclude``).
    out["finished_pools_with_answers"] = [
        exclusion_json(p)
        for p in banned_answers.finished_pools_to_review(
            session, requester_id=user.id, labeler_id=ban.labeler_id
        )
    ]
    return out


def exclusion_json(preview: banned_answers.ExclusionPreview) -> dict:
    """What excluding a banned labeler's answers from a pool does and costs."""
    return {
        "pool_id": public_id(preview.pool.id),
        "user_id": public_id(preview.labeler_id),
        "answers_count": preview.answers,
        "reissued_slots": preview.slots,
        "cost": preview.cost_cents / 100,
        "to_reserve": preview.to_reserve_cents / 100,
        "balance": preview.balance_cents / 100,
        "reopens_pool": preview.reopens,
        "pool_status": preview.pool.status.upper(),
    }


@router.get("/pools/{pool_id}/banned-answers", name="api:banned_answers")
def preview_banned_answers(
    session: SessionDep, user: ApiRequester, pool_id: int, user_id: str
) -> dict:
    """What excluding the labeler's counted answers from the pool would cost."""
    preview = banned_answers.preview_exclusion(
        session, requester_id=user.id, pool_id=pool_id, labeler_id=_int(user_id, "user_id") or 0
    )
    return exclusion_json(preview)


@router.post("/pools/{pool_id}/banned-answers/exclude", name="api:banned_answers:exclude")
def exclude_banned_answers(
    session: SessionDep, user: ApiRequester, pool_id: int, body: dict[str, Any] = Body(...)
) -> dict:
    """Exclude a banned labeler's answers and re-issue their tasks: ``{user_id, cost}``,
    ``cost`` being the figure ``GET …/banned-answers`` showed (409 ``COST_CHANGED`` if it
    moved; a closed pool reopens with the cost reserved)."""
    if body.get("cost") is None:
        raise ValidationFailed("Confirm the cost.", errors={"cost": "VALUE_REQUIRED"})
    done = banned_answers.exclude_answers(
        session,
        requester_id=user.id,
        pool_id=pool_id,
        labeler_id=_int(body.get("user_id"), "user_id") or 0,
        confirmed_cents=cents_of(body["cost"], field="cost"),
    )
    return exclusion_json(done)


@router.get("/user-restrictions/{ban_id}", name="api:user_restriction")
def get_restriction(session: SessionDep, user: ApiRequester, ban_id: int) -> dict:
    return restriction_json(bans.get_ban(session, requester=user, ban_id=ban_id))


@router.delete("/user-restrictions/{ban_id}", status_code=204, name="api:user_restriction:lift")
def lift_restriction(session: SessionDep, user: ApiRequester, ban_id: int) -> Response:
    """Unban."""
    bans.lift_ban(session, requester=user, ban_id=ban_id)
    return Response(status_code=204)


# ---------------------------------------------------------------- skills


def skill_json(skill: Skill) -> dict:
    return {
        "id": public_id(skill.id),
        "name": skill.name,
        "private_comment": skill.description,
        "hidden": True,
        "created": _ts(skill.created_at),
    }


def user_skill_json(row: UserSkill) -> dict:
    return {
        "id": public_id(row.id),
        "skill_id": public_id(row.skill_id),
        "user_id": public_id(row.user_id),
        "value": int(round(row.value)),
        "exact_value": row.value,
        "created": _ts(row.updated_at),
        "modified": _ts(row.updated_at),
    }


@router.get("/skills", name="api:skills")
def list_skills(
    session: SessionDep, user: ApiRequester, name: str | None = None, limit: int = 50
) -> dict:
    found = [s for s in skills.list_skills(session, requester=user) if name in (None, s.name)]
    return _page([skill_json(s) for s in found], limit)


@router.post("/skills", status_code=201, name="api:skills:create")
def create_skill(session: SessionDep, user: ApiRequester, body: dict[str, Any] = Body(...)) -> dict:
    skill = skills.create_skill(
        session,
        requester=user,
        name=str(body.get("name") or ""),
        description=str(body.get("private_comment") or ""),
    )
    return skill_json(skill)


@router.get("/skills/{skill_id}", name="api:skill")
def get_skill(session: SessionDep, user: ApiRequester, skill_id: int) -> dict:
    return skill_json(skills.get_skill(session, requester=user, skill_id=skill_id))


@router.get("/user-skills", name="api:user_skills")
def list_user_skills(
    session: SessionDep,
    user: ApiRequester,
    skill_id: str | None = None,
    user_id: str | None = None,
    limit: int = Query(50, ge=1, le=500),
) -> dict:
    rows = skills.list_user_skills(
        session,
        requester=user,
        skill_id=_int(skill_id, "skill_id"),
        labeler_id=_int(user_id, "user_id"),
        limit=limit + 1,
    )
    return _page([user_skill_json(r) for r in rows], limit)


@router.put("/user-skills", name="api:user_skills:set")
def set_user_skill(
    session: SessionDep, user: ApiRequester, body: dict[str, Any] = Body(...)
) -> dict:
    """Set a labeler's skill value (0-100)."""
    row = skills.set_user_skill(
        session,
        requester=user,
        skill_id=_int(body.get("skill_id"), "skill_id") or 0,
        labeler_id=_int(body.get("user_id"), "user_id") or 0,
        value=body.get("value"),
    )
    return user_skill_json(row)


@router.delete("/user-skills/{user_skill_id}", status_code=204, name="api:user_skill:delete")
def delete_user_skill(session: SessionDep, user: ApiRequester, user_skill_id: int) -> Response:
    skills.delete_user_skill(session, requester=user, user_skill_id=user_skill_id)
    return Response(status_code=204)


# ---------------------------------------------------------------- pool quality rules


@router.get("/pools/{pool_id}/quality-rules", name="api:pool_quality_rules")
def get_rules(session: SessionDep, user: ApiRequester, pool_id: int) -> dict:
    """The pool's rules as Toloka ``quality_control.configs``."""
    pool, configs = pool_rules.get_pool_rules(session, requester=user, pool_id=pool_id)
    return {"configs": configs, "exclude_banned_answers": pool.exclude_banned_answers}


@router.put("/pools/{pool_id}/quality-rules", name="api:pool_quality_rules:set")
def put_rules(session: SessionDep, user: ApiRequester, pool_id: int, body: Any = Body(...)) -> dict:
    """Replace the rules (a list of configs, or ``{"configs": [...]}``); validated."""
    exclude = body.get("exclude_banned_answers") if isinstance(body, dict) else None
    configs = pool_rules.save_pool_rules(
        session,
        requester=user,
        pool_id=pool_id,
        raw=body,
        exclude_banned_answers=None if exclude is None else bool(exclude),
    )
    return {"configs": configs}


@router.post("/pools/{pool_id}/quality-rules/dry-run", name="api:pool_quality_rules:dry_run")
def dry_run_rules(
    session: SessionDep, user: ApiRequester, pool_id: int, body: Any = Body(...)
) -> JSONResponse:
    """How many labelers each rule would have hit on the pool's past answers."""
    configs = pool_rules.validate_rules(session, requester=user, raw=body)
    results = dry_run.dry_run(session, requester=user, pool_id=pool_id, configs=configs)
    return JSONResponse(
        {
            "rules": [
                {
                    "rule": r.description,
                    "action": r.action,
                    "simulated": r.simulated,
                    "labelers_count": r.count,
                    "user_ids": [public_id(labeler_id) for labeler_id, _ in r.hits],
                }
                for r in results
            ]
        }
    )
