"""User bonuses in Toloka's shape: ``POST /api/v1/user-bonuses`` (one or a list, sync or as
an idempotent ``USER_BONUS.BATCH_CREATE`` operation), search and read."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import JSONResponse

from app.api.operations import operation_json
from app.api.schemas.common import cents_of, clamp_limit, iso, parse_filter_id, parse_id, public_id
from app.deps import ApiRequester, SessionDep
from app.errors import CrowdlabError, ValidationFailed
from app.services.money import bonus_batches, bonuses

router = APIRouter(prefix="/api/v1", tags=["bonuses"])

_FIELDS = {
    "user_id",
    "amount",
    "public_title",
    "public_message",
    "private_comment",
    "assignment_id",
    "without_message",
    # read-only keys a client may send back, and toloka-kit's batch index
    "id",
    "created",
    "__item_idx",
}


def bonus_json(bonus: bonuses.Bonus) -> dict:
    """A bonus as Toloka returns it."""
    return {
        "id": public_id(bonus.id),
        "user_id": public_id(bonus.labeler_id),
        "amount": bonus.amount_cents / 100,
        "public_title": {"EN": bonus.title} if bonus.title else None,
        "public_message": {"EN": bonus.message} if bonus.message else None,
        "private_comment": bonus.private_comment or None,
        "assignment_id": public_id(bonus.assignment_id) if bonus.assignment_id else None,
        "pool_id": public_id(bonus.pool_id) if bonus.pool_id else None,
        "without_message": False,
        "created": iso(bonus.created_at),
    }


def _text(value: Any, field: str) -> str:
    """Toloka's ``{"EN": text}`` (or a plain string) as one text."""
    if value is None:
        return ""
    if isinstance(value, dict):
        texts = {str(v) for v in value.values() if v}
        if len(texts) > 1:
            raise ValidationFailed(
                f"{field}: Crowdlab shows one text to every labeler; send one language.",
                errors={field: "NOT_SUPPORTED"},
            )
        return texts.pop() if texts else ""
    return str(value)


def _item(raw: Any) -> bonus_batches.BonusItem:
    """One body object → a bonus request (a broken one carries its error)."""
    try:
        if not isinstance(raw, dict):
            raise ValidationFailed("A bonus is an object.", errors={"request": "INVALID_VALUE"})
        unknown = sorted(set(raw) - _FIELDS)
        if unknown:
            raise ValidationFailed(
                f"Crowdlab does not support {', '.join(unknown)} on bonuses.",
                errors=dict.fromkeys(unknown, "NOT_SUPPORTED"),
            )
        if raw.get("without_message"):
            raise ValidationFailed(
                "Crowdlab always tells the labeler what a bonus is for.",
                errors={"without_message": "NOT_SUPPORTED"},
            )
        if raw.get("user_id") in (None, ""):
            raise ValidationFailed("user_id is required.", errors={"user_id": "VALUE_REQUIRED"})
        if raw.get("amount") is None:
            raise ValidationFailed("amount is required.", errors={"amount": "VALUE_REQUIRED"})
        assignment = raw.get("assignment_id")
        return bonus_batches.BonusItem(
            labeler_id=parse_filter_id(str(raw["user_id"]), name="user_id"),
            amount_cents=cents_of(raw["amount"], field="amount"),
            title=_text(raw.get("public_title"), "public_title"),
            message=_text(raw.get("public_message"), "public_message"),
            private_comment=str(raw.get("private_comment") or ""),
            assignment_id=None
            if assignment in (None, "")
            else parse_filter_id(str(assignment), name="assignment_id"),
        )
    except CrowdlabError as exc:
        return bonus_batches.BonusItem(labeler_id=None, amount_cents=None, error=exc)


def _failure(exc: CrowdlabError) -> dict:
    errors = getattr(exc, "errors", None) or {"request": exc.code}
    return {k: {"code": str(v), "message": exc.message} for k, v in errors.items()}


@router.post("/user-bonuses", status_code=201, name="api:user_bonuses:create", response_model=None)
def create_bonuses(
    session: SessionDep,
    user: ApiRequester,
    body: Any = Body(...),
    operation_id: str | None = Query(None, max_length=64),
    async_mode: bool = False,
    skip_invalid_items: bool = False,
) -> JSONResponse:
    """Pay one bonus or a list: ``{user_id, amount, public_title?, public_message,
    assignment_id?, private_comment?}``.

    ``async_mode`` answers a finished ``USER_BONUS.BATCH_CREATE`` operation whose log
    gives each item's ``user_bonus_id`` (what toloka-kit's ``create_user_bonus`` reads).
    ``operation_id`` pays once: the same id again answers 409 ``OPERATION_ALREADY_EXISTS``
    and pays nothing. Otherwise one object → the bonus, a list → ``{items, validation_errors}``.
    """
    single = not isinstance(body, list)
    raws = [body] if single else body
    items = [_item(raw) for raw in raws]

    def log_item(index: int, bonus, error) -> dict:
        echoed = raws[index] if isinstance(raws[index], dict) else {}
        if bonus is not None:
            return {
                "type": "USER_BONUS_CREATE",
                "success": True,
                "input": echoed,
                "output": {"user_bonus_id": public_id(bonus.id)},
            }
        return {
            "type": "USER_BONUS_VALIDATE",
            "success": False,
            "input": echoed,
            "output": _failure(error),
        }

    batch = bonus_batches.grant_bonuses(
        session,
        requester=user,
        items=items,
        operation_id=operation_id or None,
        record=async_mode or bool(operation_id),
        skip_invalid=skip_invalid_items and not single,
        log_item=log_item,
    )
    if async_mode:
        return JSONResponse(operation_json(batch.operation), status_code=202)
    if single:
        return JSONResponse(bonus_json(batch.granted[0]), status_code=201)
    return JSONResponse(
        {
            "items": {str(i): bonus_json(b) for i, b in sorted(batch.granted.items())},
            "validation_errors": {str(i): _failure(e) for i, e in sorted(batch.errors.items())},
        },
        status_code=201,
    )


@router.get("/user-bonuses", name="api:user_bonuses")
def list_bonuses(
    request: Request,
    session: SessionDep,
    user: ApiRequester,
    user_id: str | None = None,
    assignment_id: str | None = None,
    sort: str = "id",
    limit: int | None = Query(None, ge=1, le=300),
) -> dict:
    """The caller's bonuses, by id (``sort=-id`` newest first); ``id_gt|gte|lt|lte``."""
    key = sort.strip().lstrip("+-")
    if key != "id":
        raise ValidationFailed("Bonuses sort by id.", errors={"sort": "NOT_SUPPORTED"})
    size = clamp_limit(limit)
    params = request.query_params
    bounds = {
        op: parse_filter_id(params.get(f"id_{op}"), name=f"id_{op}")
        for op in ("gt", "gte", "lt", "lte")
    }
    found = bonuses.list_bonuses(
        session,
        requester=user,
        labeler_id=parse_filter_id(user_id, name="user_id"),
        assignment_id=parse_filter_id(assignment_id, name="assignment_id"),
        id_bounds=bounds,
        ascending=not sort.strip().startswith("-"),
        limit=size + 1,
    )
    return {"items": [bonus_json(b) for b in found[:size]], "has_more": len(found) > size}


@router.get("/user-bonuses/{bonus_id}", name="api:user_bonus")
def get_bonus(session: SessionDep, user: ApiRequester, bonus_id: str) -> dict:
    """One of the caller's bonuses."""
    found = bonuses.get_bonus(session, requester=user, bonus_id=parse_id(bonus_id, what="bonus"))
    return bonus_json(found)
