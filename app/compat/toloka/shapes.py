"""Toloka v1 compatibility: the shapes toloka-kit 1.2.3 reads (assignments, trainings,
requester, analytics, the assignments TSV) built from Crowdlab's own rows.

Every id on the wire is ``public_id`` (10-digit zero-padded) so that the client's string
comparisons (``id_gte=min(ids)``) agree with creation order. Dates are naive UTC with
milliseconds. See shared/reference/toloka-api.md.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import case, func
from sqlmodel import Session, select

from app.db.models import (
    Assignment,
    AssignmentStatus,
    Pool,
    Task,
    TaskKind,
    User,
)
from app.errors import NotFound, ValidationFailed
from app.services.money import ledger
from app.services.projects.pools import get_pool
from app.services.projects.progress import public_id
from app.settings import get_settings

_CODE_RE = re.compile(r"^[A-Z][A-Z0-9_]+$")


def iso(value: datetime | None) -> str | None:
    """Toloka's date form: naive UTC with milliseconds (no ``Z``)."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat(timespec="milliseconds")


# Crowdlab setting names → the Toloka field a client sent (for validation payloads).
_TOLOKA_FIELDS = {
    "quality_rules": "quality_control.configs",
    "reward_cents": "reward_per_assignment",
    "time_limit_seconds": "assignment_max_duration_seconds",
    "general_per_suite": "mixer_config.real_tasks_count",
    "control_per_suite": "mixer_config.golden_tasks_count",
    "training_per_suite": "mixer_config.training_tasks_count",
    "expires_at": "will_expire",
    "filter_languages": "filter",
    "adult_content": "may_contain_adult_content",
    "review_period_days": "auto_accept_period_day",
    "max_overlap": "dynamic_overlap_config.max_overlap",
    "min_confidence": "dynamic_overlap_config.min_confidence",
    "answer_weight_skill_id": "dynamic_overlap_config.answer_weight_skill_id",
}


def _toloka_field(field: str) -> str:
    head, dot, rest = str(field).partition(".")
    if head not in _TOLOKA_FIELDS:
        return str(field)
    mapped = _TOLOKA_FIELDS[head]
    if rest.startswith("configs.") and mapped.endswith(".configs"):
        rest = rest.removeprefix("configs.")
    return mapped + dot + rest


def toloka_validation_payload(errors: dict[str, Any], message: str) -> dict[str, dict]:
    """Crowdlab's ``{field: message}`` (or ``{field: CODE}``) as ``{field: {code, message}}``,
    keyed by the Toloka field names the client sent."""
    out: dict[str, dict] = {}
    for raw_field, value in (errors or {}).items():
        field = _toloka_field(raw_field)
        text = str(value)
        if _CODE_RE.match(text):
            out[str(field)] = {"code": text, "message": message}
        else:
            out[str(field)] = {"code": "INVALID_VALUE", "message": text}
    return out


def absolute_input(values: dict, image: str) -> dict:
    """A task's ``input_values`` with a stored image as an absolute URL."""
    out = dict(values or {"image": image})
    url = out.get("image")
    if isinstance(url, str) and url.startswith("/"):
        out["image"] = get_settings().base_url.rstrip("/") + url
    return out


# ---------------------------------------------------------------- requester


def requester_json(session: Session, *, requester: User) -> dict[str, Any]:
    """``GET /requester``: id, balance in dollars (from the ledger) and public name."""
    cents = ledger.get_balance(session, user=requester)
    return {
        "id": public_id(requester.id),
        "balance": round(cents / 100, 2),
        "public_name": {"EN": requester.name or requester.email},
        "company": None,
    }


# ---------------------------------------------------------------- analytics


def _general_totals(session: Session, pool: Pool) -> tuple[int, int]:
    """(answers still needed in total, answers given) over the pool's general tasks."""
    overlap = func.coalesce(Task.overlap, pool.overlap)
    capped = case((Task.submitted_count < overlap, Task.submitted_count), else_=overlap)
    needed, done = session.exec(
        select(func.coalesce(func.sum(overlap), 0), func.coalesce(func.sum(capped), 0)).where(
            Task.pool_id == pool.id, Task.kind == TaskKind.GENERAL
        )
    ).one()
    return int(needed or 0), int(done or 0)


def _count_assignments(session: Session, pool: Pool, *statuses: str) -> int:
    query = select(func.count()).select_from(Assignment).where(Assignment.pool_id == pool.id)
    if statuses:
        query = query.where(Assignment.status.in_(list(statuses)))
    return int(session.exec(query).one())


def _metric(session: Session, pool: Pool, name: str) -> Any:
    done = (AssignmentStatus.SUBMITTED, AssignmentStatus.ACCEPTED, AssignmentStatus.REJECTED)
    if name == "completion_percentage":
        needed, given = _general_totals(session, pool)
        return {"value": round(min(100.0, 100.0 * given / needed), 2) if needed else 100.0}
    if name == "real_tasks_count":
        return int(
            session.exec(
                select(func.count())
                .select_from(Task)
                .where(Task.pool_id == pool.id, Task.kind == TaskKind.GENERAL)
            ).one()
        )
    simple = {
        "submitted_assignments_count": (AssignmentStatus.SUBMITTED,),
        "approved_assignments_count": (AssignmentStatus.ACCEPTED,),
        "rejected_assignments_count": (AssignmentStatus.REJECTED,),
        "skipped_assignments_count": (AssignmentStatus.SKIPPED,),
        "expired_assignments_count": (AssignmentStatus.EXPIRED,),
    }
    if name in simple:
        return _count_assignments(session, pool, *simple[name])
    if name in ("unique_workers_count", "unique_submitters_count"):
        query = select(func.count(func.distinct(Assignment.labeler_id))).where(
            Assignment.pool_id == pool.id
        )
        if name == "unique_submitters_count":
            query = query.where(Assignment.status.in_(done))
        return int(session.exec(query).one())
    if name == "spent_budget":
        return round(ledger.get_pool_spent(session, pool=pool) / 100, 2)
    if name == "avg_submit_assignment_millis":
        avg = session.exec(
            select(func.avg(Assignment.duration_seconds)).where(
                Assignment.pool_id == pool.id, Assignment.status.in_(done)
            )
        ).one()
        return round(float(avg) * 1000) if avg is not None else 0
    return None


ANALYTICS_NAMES = (
    "completion_percentage",
    "real_tasks_count",
    "submitted_assignments_count",
    "approved_assignments_count",
    "rejected_assignments_count",
    "skipped_assignments_count",
    "expired_assignments_count",
    "unique_workers_count",
    "unique_submitters_count",
    "spent_budget",
    "avg_submit_assignment_millis",
)


def run_analytics(session: Session, *, requester: User, requests: Sequence[dict]) -> list[dict]:
    """``POST /staging/analytics-2`` items → ``[{request, result, finished}]``."""
    if not requests or len(requests) > 10:
        raise ValidationFailed(
            "Send 1 to 10 analytics requests.", errors={"request": "1 to 10 requests."}
        )
    results = []
    for index, request in enumerate(requests):
        if not isinstance(request, dict):
            raise ValidationFailed("Invalid request.", errors={str(index): "Expected an object."})
        subject = str(request.get("subject") or "").upper()
        name = str(request.get("name") or "")
        if subject != "POOL":
            raise ValidationFailed(
                "Only POOL analytics are supported.",
                errors={f"{index}.subject": "NOT_SUPPORTED"},
            )
        if name not in ANALYTICS_NAMES:
            raise ValidationFailed(
                f"Unsupported analytics name {name!r}; supported: {', '.join(ANALYTICS_NAMES)}.",
                errors={f"{index}.name": "NOT_SUPPORTED"},
            )
        raw_id = str(request.get("subject_id") or "").strip()
        if not raw_id.isdigit():
            raise NotFound("No such pool.")
        pool = get_pool(session, requester=requester, pool_id=int(raw_id))
        results.append(
            {"request": request, "result": _metric(session, pool, name), "finished": None}
        )
    return results


# Toloka endpoints Crowdlab does not offer: answered with a clear code, not a bare 404.
UNSUPPORTED = {
    "/api/v1/attachments": "attachments",
    "/api/v1/message-threads": "message threads",
    "/api/v1/user-metadata": "user metadata",
    "/api/staging/projects": "project checks",
    "/api/app/": "Toloka Apps",
}


def unsupported_feature(path: str) -> str | None:
    """What Toloka feature an unrouted path belongs to, if Crowdlab knowingly lacks it."""
    for prefix, feature in UNSUPPORTED.items():
        if path.startswith(prefix):
            return feature
    if re.match(r"^/api/v1/projects/[^/]+/clone$", path):
        return "cloning of projects"
    if re.match(r"^/api/v1/(pools|trainings)/[^/]+/close-for-update$", path):
        return "close-for-update"
    return None
