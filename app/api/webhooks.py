"""Webhook subscriptions in Toloka's shape (``/api/v1/webhook-subscriptions``): events of a
pool are POSTed to the receiver as ``{"events": [...]}``, signed with the subscription's
``secret_key`` (header ``X-Crowdlab-Signature: sha256=<HMAC of the body>``) and retried
with backoff until the receiver answers 2xx."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Query
from fastapi.responses import JSONResponse, Response

from app.api.schemas.common import (
    clamp_limit,
    iso,
    parse_datetime,
    parse_filter_id,
    parse_id,
    public_id,
)
from app.db.models import WebhookSubscription
from app.deps import ApiRequester, SessionDep
from app.errors import CrowdlabError, ValidationFailed
from app.services.webhooks import subscriptions

router = APIRouter(prefix="/api/v1", tags=["webhooks"])

_FIELDS = {"webhook_url", "event_type", "pool_id", "secret_key", "id", "created"}


def subscription_json(row: WebhookSubscription) -> dict[str, Any]:
    """A subscription as Toloka returns it (the secret is not sent back)."""
    return {
        "id": public_id(row.id),
        "webhook_url": row.url,
        "event_type": row.event_type,
        "pool_id": public_id(row.pool_id),
        "created": iso(row.created_at),
    }


def _item(raw: Any) -> subscriptions.SubscriptionInput:
    if not isinstance(raw, dict):
        raise ValidationFailed("A subscription is an object.", errors={"request": "INVALID_VALUE"})
    unknown = sorted(set(raw) - _FIELDS)
    if unknown:
        raise ValidationFailed(
            f"Crowdlab does not support {', '.join(unknown)} on subscriptions.",
            errors=dict.fromkeys(unknown, "NOT_SUPPORTED"),
        )
    for key in ("webhook_url", "event_type", "pool_id"):
        if raw.get(key) in (None, ""):
            raise ValidationFailed(f"{key} is required.", errors={key: "VALUE_REQUIRED"})
    return subscriptions.SubscriptionInput(
        pool_id=parse_id(raw["pool_id"], what="pool"),
        event_type=str(raw["event_type"]).upper(),
        url=str(raw["webhook_url"]),
        secret_key=None if raw.get("secret_key") is None else str(raw["secret_key"]),
    )


@router.put("/webhook-subscriptions", name="api:webhooks_upsert")
def upsert_subscriptions(
    session: SessionDep, user: ApiRequester, body: Any = Body(...)
) -> JSONResponse:
    """Create or update subscriptions (a list); ``{"items", "validation_errors"}`` by index."""
    raws = body if isinstance(body, list) else [body]
    items: dict[str, dict] = {}
    errors: dict[str, dict] = {}
    for index, raw in enumerate(raws):
        try:
            row = subscriptions.upsert_subscription(session, requester=user, item=_item(raw))
        except CrowdlabError as exc:
            session.rollback()
            fields = getattr(exc, "errors", None) or {"pool_id": exc.code}
            errors[str(index)] = {
                k: {"code": str(v), "message": exc.message} for k, v in fields.items()
            }
        else:
            items[str(index)] = subscription_json(row)
    if not items:  # nothing saved: an error in Toloka's shape (the client reads ``code``)
        raise ValidationFailed(
            "No subscription was saved.",
            errors={
                f"{i}.{field}": e["code"]
                for i, fields in errors.items()
                for field, e in fields.items()
            },
        )
    return JSONResponse({"items": items, "validation_errors": errors}, status_code=201)


@router.get("/webhook-subscriptions", name="api:webhooks_list")
def list_subscriptions(
    session: SessionDep,
    user: ApiRequester,
    pool_id: str | None = None,
    event_type: str | None = None,
    id_gt: str | None = None,
    created_gt: str | None = None,
    sort: str = "id",
    limit: int | None = Query(None, ge=1, le=300),
) -> dict[str, Any]:
    """The caller's subscriptions by ``id`` or ``created`` (what toloka-kit pages by),
    paged with ``id_gt`` / ``created_gt``."""
    key = sort.strip().lstrip("+")
    if key not in ("id", "created"):
        raise ValidationFailed(
            f"Subscriptions sort by id or created (not {sort!r}).", errors={"sort": "NOT_SUPPORTED"}
        )
    size = clamp_limit(limit)
    rows = subscriptions.list_subscriptions(
        session,
        requester=user,
        pool_id=parse_filter_id(pool_id, name="pool_id"),
        event_type=event_type.upper() if event_type else None,
        after_id=parse_filter_id(id_gt, name="id_gt") or 0,
        created_after=parse_datetime(created_gt, field="created_gt"),
        by_created=key == "created",
        limit=size + 1,
    )
    return {"items": [subscription_json(r) for r in rows[:size]], "has_more": len(rows) > size}


@router.get("/webhook-subscriptions/{subscription_id}", name="api:webhooks_get")
def get_subscription(session: SessionDep, user: ApiRequester, subscription_id: str) -> dict:
    """One of the caller's subscriptions."""
    row = subscriptions.get_subscription(
        session, requester=user, subscription_id=parse_id(subscription_id, what="subscription")
    )
    return subscription_json(row)


@router.delete(
    "/webhook-subscriptions/{subscription_id}", status_code=204, name="api:webhooks_delete"
)
def delete_subscription(session: SessionDep, user: ApiRequester, subscription_id: str) -> Response:
    """Stop sending this subscription's events."""
    subscriptions.delete_subscription(
        session, requester=user, subscription_id=parse_id(subscription_id, what="subscription")
    )
    return Response(status_code=204)
