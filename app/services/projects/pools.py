"""Pools: settings, budget review, launch, close and archive.

States: draft → open (launch reserves the budget) → closed (by hand or when complete;
the unspent reservation is released) → open again, or archived.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from sqlalchemy import case, func
from sqlmodel import Session, select

from app.db.models import (
    Pool,
    PoolStatus,
    Project,
    ProjectStatus,
    Task,
    TaskKind,
    TaskSuite,
    User,
)
from app.db.models.pool import PoolType
from app.db.types import utcnow
from app.errors import Conflict, InsufficientFunds, NotFound, ValidationFailed
from app.services.money import ledger
from app.services.projects.pool_dynamic import check_references, validate_dynamic
from app.services.projects.pool_model import forget_model_answers, queue_model_predictions
from app.services.projects.pool_state import mark_closed
from app.services.projects.projects import get_project
from app.services.projects.reservation import (
    check_margin,
    margin_suites,
    reissue_risks,
    suggested_margin,
)
from app.services.projects.tally import TaskTally, count_tally, recent_tally
from app.services.quality.presets import image_classification_preset
from app.services.quality.rules import (
    check_captcha_rules,
    dump_configs,
    parse_captcha_frequency,
    parse_configs,
)
from app.services.text import control_problem
from app.settings import get_settings

MAX_OVERLAP = 1000
MAX_PER_SUITE = 100
MAX_TIME_LIMIT = 24 * 3600
LANGUAGE_RE = re.compile(r"^[A-Z]{2}$")

# Settings that may change while a pool is open; the rest (price, overlap, suite
# composition) would invalidate the reserved budget.
EDITABLE_WHILE_OPEN = {
    "name",
    "public_description",
    "private_comment",
    "quality_rules",
    "filter_languages",
    "min_rating",
    "adult_content",
    "time_limit_seconds",
    "auto_accept",
    "review_period_days",
    "expires_at",
    "priority",
    "keep_task_order",
    "exclude_banned_answers",
    "captcha_frequency",
    "model_retrain_every",
    "model_retrain_collection_id",
    "extra",
}
POOL_FIELDS = EDITABLE_WHILE_OPEN | {
    "overlap",
    "max_overlap",
    "min_confidence",
    "answer_weight_skill_id",
    "model_id",
    "reward_cents",
    "general_per_suite",
    "control_per_suite",
    "training_per_suite",
    "pool_type",
}


def _validate(values: dict) -> dict:
    """Check and normalise pool settings; raises ``ValidationFailed`` with every problem."""
    errors: dict[str, str] = {}
    settings = get_settings()
    for key in ("public_description", "private_comment"):
        if problem := control_problem(str(values.get(key) or "")):
            errors[key] = problem
    if "name" in values:
        values["name"] = (values["name"] or "").strip()
        if problem := control_problem(values["name"], name=True):
            errors["name"] = problem
        elif not values["name"]:
            errors["name"] = "Give the pool a name."
        elif len(values["name"]) > 200:
            errors["name"] = "At most 200 characters."
    if "pool_type" in values and values["pool_type"] not in (PoolType.GENERAL, PoolType.TRAINING):
        errors["pool_type"] = "Pool type is general or training."
    if "overlap" in values and not 1 <= int(values["overlap"]) <= MAX_OVERLAP:
        errors["overlap"] = f"Overlap is between 1 and {MAX_OVERLAP}."
    training = values.get("pool_type") == PoolType.TRAINING
    validate_dynamic(values, errors, training=training, limit=MAX_OVERLAP)
    if "reward_cents" in values:
        minimum = 0 if training else settings.min_reward_cents
        if int(values["reward_cents"]) < minimum:
            errors["reward_cents"] = f"The price per suite is at least ${minimum / 100:.2f}."
    for key in ("general_per_suite", "control_per_suite", "training_per_suite"):
        if key in values and not 0 <= int(values[key]) <= MAX_PER_SUITE:
            errors[key] = f"Between 0 and {MAX_PER_SUITE}."
    if {"general_per_suite", "control_per_suite"} <= values.keys() and not errors:
        total = sum(
            int(values.get(k, 0))
            for k in ("general_per_suite", "control_per_suite", "training_per_suite")
        )
        if total < 1:
            errors["general_per_suite"] = "A suite needs at least one task."
        elif total > MAX_PER_SUITE:
            errors["general_per_suite"] = f"A suite has at most {MAX_PER_SUITE} tasks."
    if (
        "time_limit_seconds" in values
        and not 10 <= int(values["time_limit_seconds"]) <= MAX_TIME_LIMIT
    ):
        errors["time_limit_seconds"] = f"Between 10 and {MAX_TIME_LIMIT} seconds."
    if "review_period_days" in values and not 1 <= int(values["review_period_days"]) <= 21:
        errors["review_period_days"] = "The review period is 1 to 21 days."
    if "priority" in values and not -100 <= int(values["priority"]) <= 100:
        errors["priority"] = "Priority is between -100 and 100."
    if values.get("min_rating") is not None and not 0 <= int(values["min_rating"]) <= 100:
        errors["min_rating"] = "Minimum rating is between 0 and 100."
    if "filter_languages" in values:
        codes = [str(c).strip().upper() for c in values["filter_languages"] or [] if str(c).strip()]
        bad = [c for c in codes if not LANGUAGE_RE.match(c)]
        if bad:
            errors["filter_languages"] = f"Use two-letter language codes (not {', '.join(bad)})."
        values["filter_languages"] = list(dict.fromkeys(codes))
    if "quality_rules" in values:
        if not isinstance(values["quality_rules"], list):
            errors["quality_rules"] = "Quality rules are a list of Toloka quality-control configs."
        else:
            try:
                values["quality_rules"] = dump_configs(parse_configs(values["quality_rules"]))
            except ValidationFailed as exc:
                errors.update({f"quality_rules.{k}": v for k, v in exc.errors.items()})
                errors.setdefault("quality_rules", exc.message)
    if "captcha_frequency" in values:
        try:
            values["captcha_frequency"] = parse_captcha_frequency(values["captcha_frequency"])
        except ValidationFailed as exc:
            errors.update(exc.errors)
    if errors:
        raise ValidationFailed("Please fix the highlighted fields.", errors=errors)
    return values


def create_pool(
    session: Session,
    *,
    requester: User,
    project_id: int,
    name: str,
    overlap: int = 3,
    reward_cents: int = 1,
    general_per_suite: int = 9,
    control_per_suite: int = 1,
    use_quality_preset: bool = False,
    **settings_: object,
) -> Pool:
    """Create a draft pool in one of the requester's active projects.

    Extra keyword settings are any of the pool's columns in ``POOL_FIELDS``
    (time limit, filters, review, quality rules, ...).
    """
    project = get_project(session, requester=requester, project_id=project_id)
    if project.status == ProjectStatus.ARCHIVED:
        raise Conflict("This project is archived; new pools cannot be added.")
    unknown = set(settings_) - POOL_FIELDS
    if unknown:
        raise TypeError(f"unknown pool settings: {sorted(unknown)}")
    values = {
        "name": name,
        "overlap": overlap,
        "reward_cents": reward_cents,
        "general_per_suite": general_per_suite,
        "control_per_suite": control_per_suite,
        "pool_type": PoolType.GENERAL,
        **settings_,
    }
    if use_quality_preset:
        values["quality_rules"] = image_classification_preset()
    values = _validate(values)
    check_captcha_rules(values.get("quality_rules"), values.get("captcha_frequency"))
    check_references(session, requester=requester, values=values)
    pool = Pool(project_id=project.id, owner_id=requester.id, **values)
    session.add(pool)
    session.commit()
    session.refresh(pool)
    return pool


def _model_changed(session: Session, pool: Pool, values: dict) -> bool:
    """Forget the old model's answers when the pool's model changes (flush only)."""
    if "model_id" not in values or values["model_id"] == pool.model_id:
        return False
    forget_model_answers(session, pool=pool)
    return values["model_id"] is not None


def get_pool(session: Session, *, requester: User, pool_id: int) -> Pool:
    """One of the requester's pools (someone else's id → ``NotFound``)."""
    pool = session.get(Pool, pool_id)
    if pool is None or pool.owner_id != requester.id:
        raise NotFound("No such pool.")
    return pool


def list_pools(
    session: Session,
    *,
    requester: User,
    project_id: int | None = None,
    status: str | None = None,
    id_gt: int | None = None,
    limit: int | None = None,
    pool_type: str | None = None,
) -> list[Pool]:
    """The requester's pools (optionally of one project / in one state / of one type), by id."""
    query = select(Pool).where(Pool.owner_id == requester.id)
    if pool_type is not None:
        query = query.where(Pool.pool_type == pool_type)
    if project_id is not None:
        query = query.where(Pool.project_id == project_id)
    if status is not None:
        query = query.where(Pool.status == status)
    if id_gt is not None:
        query = query.where(Pool.id > id_gt)
    query = query.order_by(Pool.id)
    if limit is not None:
        query = query.limit(limit)
    return list(session.exec(query))


def update_pool(
    session: Session,
    *,
    requester: User,
    pool_id: int,
    use_quality_preset: bool = False,
    **changes: object,
) -> Pool:
    """Change pool settings; an open pool keeps its price, overlap and suite composition."""
    pool = get_pool(session, requester=requester, pool_id=pool_id)
    unknown = set(changes) - POOL_FIELDS
    if unknown:
        raise TypeError(f"unknown pool settings: {sorted(unknown)}")
    if pool.status == PoolStatus.ARCHIVED:
        raise Conflict("This pool is archived; it can no longer be edited.")
    if use_quality_preset:
        changes["quality_rules"] = image_classification_preset()
    if pool.status == PoolStatus.OPEN:
        frozen = sorted(
            key
            for key, value in changes.items()
            if key not in EDITABLE_WHILE_OPEN and getattr(pool, key) != value
        )
        if frozen:
            raise Conflict(
                "Close the pool to change its price, overlap or suite composition "
                f"({', '.join(frozen)}); rules, filters and the time limit can change while open.",
                payload={"fields": frozen},
            )
    merged = {
        "general_per_suite": pool.general_per_suite,
        "control_per_suite": pool.control_per_suite,
        "training_per_suite": pool.training_per_suite,
        "pool_type": pool.pool_type,
        **changes,
    }
    if {"overlap", "max_overlap", "min_confidence", "model_retrain_every"} & changes.keys():
        for key in ("overlap", "max_overlap", "min_confidence"):
            merged.setdefault(key, getattr(pool, key))
    values = _validate(merged)
    check_captcha_rules(
        values.get("quality_rules", pool.quality_rules),
        values.get("captcha_frequency", pool.captcha_frequency),
    )
    check_references(session, requester=requester, values=values)
    if pool.fixed_suites and values.get("max_overlap") is not None:
        raise ValidationFailed(
            "This pool hands out your own task suites a fixed number of times; dynamic "
            "overlap works on tasks mixed into suites.",
            errors={"max_overlap": "NOT_SUPPORTED"},
        )
    changed_model = _model_changed(session, pool, values)
    for key, value in values.items():
        setattr(pool, key, value)
    session.add(pool)
    session.commit()
    session.refresh(pool)
    if changed_model:  # the new model answers the pool's tasks, in the background
        queue_model_predictions(session, pool=pool)
        session.refresh(pool)
    return pool


def task_counts(session: Session, *, pool: Pool, recent: bool = False) -> dict[str, int]:
    """Number of tasks of each kind in the pool (every kind present, zero or more);
    ``recent``: for a page, a large pool's figures may be a few seconds old."""
    return (recent_tally if recent else count_tally)(session, pool=pool).counts


@dataclass
class BudgetReview:
    """What launching costs: suites × price + the platform fee, against the balance."""

    general_tasks: int
    control_tasks: int
    training_tasks: int
    answers: int
    suites: int
    price_cents: int
    task_cost_cents: int
    fee_percent: float
    fee_cents: int
    total_cents: int
    reserved_cents: int
    spent_cents: int
    to_reserve_cents: int
    balance_cents: int
    warnings: list[str] = field(default_factory=list)
    max_overlap: int | None = None  # dynamic overlap: ``answers`` is the worst case
    # What the rules can add to the estimate, and the margin reserved for it: the
    # reservation (total + margin) is the most the pool spends without the requester's
    # consent (app/services/projects/reservation.py).
    risks: list[str] = field(default_factory=list)
    margin_percent: int = 0
    margin_suites: int = 0
    margin_cents: int = 0

    @property
    def limit_cents(self) -> int:
        """The most the pool may spend: the estimate plus the margin."""
        return self.total_cents + self.margin_cents

    @property
    def shortfall_cents(self) -> int:
        """How much is missing from the balance to launch (0 when it is enough)."""
        return max(0, self.to_reserve_cents - self.balance_cents)


def _fee_per_suite(price_cents: int, fee_percent: float) -> int:
    # The same rounding as the payment path (ledger.pay_suite), so the reservation covers it.
    return round(price_cents * (fee_percent or 0.0) / 100)


def _review(
    session: Session,
    pool: Pool,
    fee_percent: float,
    tally: TaskTally,
    margin_percent: int | None = None,
) -> BudgetReview:
    counts = tally.counts
    answers = tally.general_slots
    if pool.max_overlap is not None:  # dynamic overlap: the worst case is reserved
        per_task = func.coalesce(Task.overlap, pool.overlap)
        per_task = case((per_task > pool.max_overlap, per_task), else_=pool.max_overlap)
        answers = int(
            session.exec(
                select(func.coalesce(func.sum(per_task), 0)).where(
                    Task.pool_id == pool.id, Task.kind == TaskKind.GENERAL
                )
            ).one()
        )
    suites = math.ceil(answers / pool.general_per_suite) if pool.general_per_suite else 0
    if pool.fixed_suites:  # the requester's own suites: each goes out its overlap times
        suites = int(
            session.exec(
                select(func.coalesce(func.sum(TaskSuite.overlap), 0)).where(
                    TaskSuite.pool_id == pool.id
                )
            ).one()
        )
    task_cost = suites * pool.reward_cents
    fee = suites * _fee_per_suite(pool.reward_cents, fee_percent)
    total = task_cost + fee
    reserved = ledger.get_pool_reserved(session, pool=pool)
    spent = ledger.get_pool_spent(session, pool=pool)
    warnings: list[str] = []
    if not sum(counts.values()):
        warnings.append("The pool has no tasks yet: upload images or a TSV first.")
    if pool.control_per_suite and not counts[TaskKind.CONTROL]:
        warnings.append(
            f"Suites are set to include {pool.control_per_suite} control task(s) but none is "
            "marked: labelers will get general tasks only and control accuracy stays unknown."
        )
    elif pool.control_per_suite and counts[TaskKind.CONTROL] and suites:
        cap = counts[TaskKind.CONTROL] // pool.control_per_suite
        if cap < suites / max(pool.overlap, 1):
            warnings.append(
                f"A labeler sees each control task once, so {counts[TaskKind.CONTROL]} control "
                f"tasks cap every labeler at {cap} suites."
            )
    if pool.max_overlap is not None:
        warnings.append(
            f"Dynamic overlap: every task starts at {pool.overlap} answer(s) and gets more, up "
            f"to {pool.max_overlap}, only while it is below {pool.min_confidence:.0%} "
            "confidence. The worst case is reserved; what is not spent goes back to your "
            "balance when the pool closes."
        )
    margin = suggested_margin(pool) if margin_percent is None else check_margin(margin_percent)
    extra_suites = margin_suites(suites, margin)
    extra = extra_suites * (pool.reward_cents + _fee_per_suite(pool.reward_cents, fee_percent))
    return BudgetReview(
        general_tasks=counts[TaskKind.GENERAL],
        control_tasks=counts[TaskKind.CONTROL],
        training_tasks=counts[TaskKind.TRAINING],
        answers=answers,
        suites=suites,
        price_cents=pool.reward_cents,
        task_cost_cents=task_cost,
        fee_percent=fee_percent,
        fee_cents=fee,
        total_cents=total,
        reserved_cents=reserved,
        spent_cents=spent,
        to_reserve_cents=max(0, total + extra - spent - reserved),
        balance_cents=ledger.get_balance(session, user=pool.owner_id),
        warnings=warnings,
        max_overlap=pool.max_overlap,
        risks=reissue_risks(pool),
        margin_percent=margin,
        margin_suites=extra_suites,
        margin_cents=extra,
    )


def review_budget(
    session: Session, *, requester: User, pool_id: int, margin_percent: int | None = None
) -> BudgetReview:
    """The budget review shown before launch (fee at today's platform rate); the margin for
    what the rules may re-issue is ``margin_percent`` or the one the rules suggest."""
    pool = get_pool(session, requester=requester, pool_id=pool_id)
    fee = (
        pool.fee_percent if pool.status == PoolStatus.OPEN else get_settings().platform_fee_percent
    )
    return _review(session, pool, fee, recent_tally(session, pool=pool), margin_percent)


def launch_pool(
    session: Session, *, requester: User, pool_id: int, margin_percent: int | None = None
) -> Pool:
    """Reserve the pool's budget (the estimate plus the margin, by default the one its rules
    suggest) and open it; ``InsufficientFunds`` names the shortfall."""
    pool = get_pool(session, requester=requester, pool_id=pool_id)
    if pool.status == PoolStatus.OPEN:
        raise Conflict("The pool is already open.")
    if pool.status == PoolStatus.ARCHIVED:
        raise Conflict("An archived pool cannot be opened.")
    project = session.get(Project, pool.project_id)
    if project is None or project.status == ProjectStatus.ARCHIVED:
        raise Conflict("The project is archived; its pools cannot be opened.")
    fee_percent = get_settings().platform_fee_percent
    review = _review(session, pool, fee_percent, count_tally(session, pool=pool), margin_percent)
    if not (review.general_tasks + review.control_tasks + review.training_tasks):
        raise Conflict("The pool has no tasks. Upload images or a TSV before launching.")
    if review.shortfall_cents:
        short = review.shortfall_cents
        raise InsufficientFunds(
            f"Launching needs ${review.to_reserve_cents / 100:,.2f} ({review.suites} suites × "
            f"${review.price_cents / 100:,.2f} + ${review.fee_cents / 100:,.2f} fee"
            + (
                f" + ${review.margin_cents / 100:,.2f} margin for re-issued tasks"
                if review.margin_cents
                else ""
            )
            + ") but the "
            f"balance is ${review.balance_cents / 100:,.2f}. Top up at least ${short / 100:,.2f}.",
            payload={
                "required": review.to_reserve_cents / 100,
                "balance": review.balance_cents / 100,
                "shortfall": short / 100,
            },
        )
    pool.fee_percent = fee_percent
    if review.to_reserve_cents:
        ledger.reserve_for_pool(
            session, pool=pool, amount_cents=review.to_reserve_cents, memo=f"Launch of {pool.name}"
        )
    _mark_open(pool)
    session.add(pool)
    session.commit()
    session.refresh(pool)
    return pool


def _mark_open(pool: Pool) -> None:
    pool.status = PoolStatus.OPEN
    pool.opened_at = utcnow()
    pool.closed_at = None
    pool.close_reason = None


def close_pool(session: Session, *, requester: User, pool_id: int) -> int:
    """Close an open pool by hand; returns the released (unspent) reservation in cents."""
    pool = get_pool(session, requester=requester, pool_id=pool_id)
    if pool.status != PoolStatus.OPEN:
        raise Conflict(f"Only an open pool can be closed; this one is {pool.status}.")
    released = mark_closed(session, pool=pool, reason="MANUAL")
    session.commit()
    session.refresh(pool)
    return released


def archive_pool(session: Session, *, requester: User, pool_id: int) -> Pool:
    """Archive a draft or closed pool (an open pool must be closed first)."""
    pool = get_pool(session, requester=requester, pool_id=pool_id)
    if pool.status == PoolStatus.OPEN:
        raise Conflict("Close the pool before archiving it.")
    if pool.status != PoolStatus.ARCHIVED:
        pool.status = PoolStatus.ARCHIVED
        session.add(pool)
        session.commit()
        session.refresh(pool)
    return pool
