"""Collectors: the figures a rule's conditions compare, for one labeler in one pool.

Each collector counts only the labeler's items after ``since`` (the rule's last history
reset) and, when ``history_size`` is set, only the most recent N of them. The pure helpers
(``fast_figures``, ``rate_figures``, ``majority_value``) are shared with the dry run.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, select

from app.db.models import (
    Answer,
    Assignment,
    AssignmentStatus,
    CaptchaChallenge,
    LedgerAccount,
    LedgerEntry,
    LedgerKind,
    Pool,
    Task,
    TaskKind,
)
from app.db.types import utcnow
from app.services.quality.rules import CollectorConfig

DONE_STATUSES = (AssignmentStatus.SUBMITTED, AssignmentStatus.ACCEPTED, AssignmentStatus.REJECTED)
COUNTED_STATUSES = (AssignmentStatus.SUBMITTED, AssignmentStatus.ACCEPTED)


# ---------------------------------------------------------------- pure helpers


def fast_figures(durations: Iterable[float | None], threshold: float) -> dict:
    """Submit-time figures over recent suites' durations (seconds)."""
    items = list(durations)
    fast = sum(1 for d in items if d is not None and d < threshold)
    return {"total_submitted_count": len(items), "fast_submitted_count": fast}


def rate_figures(flags: Iterable[bool], prefix: str = "") -> dict:
    """Count and correct/incorrect rates (0-100) over correctness flags."""
    items = list(flags)
    total = len(items)
    correct = sum(1 for f in items if f)
    rate = 100.0 * correct / total if total else 0.0
    count_key = f"{prefix}answers_count" if prefix else "total_answers_count"
    return {
        count_key: total,
        f"{prefix}correct_answers_rate": rate,
        f"{prefix}incorrect_answers_rate": 100.0 - rate if total else 0.0,
    }


def majority_value(values: list[str], threshold: int) -> str | None:
    """The value given by at least ``threshold`` answers, if exactly one value leads."""
    if not values:
        return None
    ranked = Counter(values).most_common()
    top_value, top_count = ranked[0]
    if top_count < threshold or (len(ranked) > 1 and ranked[1][1] == top_count):
        return None
    return top_value


def is_correct(task_kind: str, known: str | None, value: str, first: str | None) -> bool:
    """Whether a control/training answer matches (training: the first answer counts)."""
    given = first if task_kind == TaskKind.TRAINING and first is not None else value
    return known is not None and given.strip() == known.strip()


# ---------------------------------------------------------------- loaders


def _after(query, column, since: datetime | None):
    return query.where(column > since) if since else query


def submit_time(
    session: Session, *, pool: Pool, labeler_id: int, since, history: int | None, threshold
) -> dict:
    query = (
        select(Assignment.duration_seconds)
        .where(
            Assignment.pool_id == pool.id,
            Assignment.labeler_id == labeler_id,
            Assignment.status.in_(DONE_STATUSES),
        )
        .order_by(Assignment.submitted_at.desc(), Assignment.id.desc())
    )
    query = _after(query, Assignment.submitted_at, since)
    if history:
        query = query.limit(history)
    return fast_figures(session.exec(query).all(), float(threshold))


def counted_answers(session: Session, task_ids: list[int]) -> dict[int, list[str]]:
    """Answers that fill overlap (not excluded, suite submitted or accepted), per task."""
    by_task: dict[int, list[str]] = defaultdict(list)
    if not task_ids:
        return by_task
    rows = session.exec(
        select(Answer.task_id, Answer.value)
        .join(Assignment, Assignment.id == Answer.assignment_id)
        .where(
            Answer.task_id.in_(task_ids),
            Answer.excluded.is_(False),
            Assignment.status.in_(COUNTED_STATUSES),
        )
        .order_by(Answer.id)
    ).all()
    for task_id, value in rows:
        by_task[task_id].append(value)
    return by_task


def majority_vote(
    session: Session, *, pool: Pool, labeler_id: int, since, history: int | None, threshold
) -> dict:
    """Agreement with the majority over the labeler's recent tasks whose overlap is complete.

    ``Task.submitted_count`` (kept by submit, reject and exclusion) pre-selects complete
    tasks; only those tasks' answers are loaded, a few at a time.
    """
    query = (
        select(Answer.task_id, Answer.value)
        .join(Task, Task.id == Answer.task_id)
        .where(
            Answer.pool_id == pool.id,
            Answer.labeler_id == labeler_id,
            Task.kind == TaskKind.GENERAL,
            Task.submitted_count >= func.coalesce(Task.overlap, pool.overlap),
        )
        .order_by(Answer.created_at.desc(), Answer.id.desc())
    )
    own = session.exec(_after(query, Answer.created_at, since)).all()
    overlaps = {}
    flags: list[bool] = []
    step = max(2 * (history or 0), 50)
    for start in range(0, len(own), step):
        chunk = own[start : start + step]
        ids = [row[0] for row in chunk]
        by_task = counted_answers(session, ids)
        overlaps.update(session.exec(select(Task.id, Task.overlap).where(Task.id.in_(ids))).all())
        for task_id, value in chunk:
            values = by_task.get(task_id, [])
            if len(values) < (overlaps.get(task_id) or pool.overlap):
                continue
            majority = majority_value(values, int(threshold))
            if majority is None:
                continue
            flags.append(value == majority)
            if history and len(flags) >= history:
                return rate_figures(flags)
    return rate_figures(flags)


def golden_set(
    session: Session, *, pool: Pool, labeler_id: int, since, history: int | None
) -> dict:
    query = (
        select(Task.kind, Task.known_answer, Answer.value, Answer.first_value)
        .join(Task, Task.id == Answer.task_id)
        .where(
            Answer.pool_id == pool.id,
            Answer.labeler_id == labeler_id,
            Task.kind.in_([TaskKind.CONTROL, TaskKind.TRAINING]),
        )
        .order_by(Answer.created_at.desc(), Answer.id.desc())
    )
    query = _after(query, Answer.created_at, since)
    if history:
        query = query.limit(history)
    rows = session.exec(query).all()
    everything = [is_correct(k, known, v, f) for k, known, v, f in rows]
    controls = [is_correct(k, known, v, f) for k, known, v, f in rows if k == TaskKind.CONTROL]
    return {**rate_figures(everything), **rate_figures(controls, prefix="golden_set_")}


def skipped_in_row(session: Session, *, pool: Pool, labeler_id: int, since) -> dict:
    query = (
        select(Assignment.status)
        .where(
            Assignment.pool_id == pool.id,
            Assignment.labeler_id == labeler_id,
            Assignment.status.in_([*DONE_STATUSES, AssignmentStatus.SKIPPED]),
        )
        .order_by(Assignment.id.desc())
        .limit(1000)
    )
    count = 0
    for status in session.exec(_after(query, Assignment.created_at, since)).all():
        if status != AssignmentStatus.SKIPPED:
            break
        count += 1
    return {"skipped_in_row_count": count}


def answer_count(session: Session, *, pool: Pool, labeler_id: int, since) -> dict:
    query = select(func.count(Assignment.id)).where(
        Assignment.pool_id == pool.id,
        Assignment.labeler_id == labeler_id,
        Assignment.status.in_(COUNTED_STATUSES),
    )
    query = _after(query, Assignment.submitted_at, since)
    return {"assignments_accepted_count": int(session.exec(query).one())}


def income(session: Session, *, pool: Pool, labeler_id: int, since, now=None) -> dict:
    """Earnings in this pool in the last 24 h (paid, plus submitted suites awaiting review)."""
    start = (now or utcnow()) - timedelta(hours=24)
    if since and since > start:
        start = since
    paid = session.exec(
        select(func.coalesce(func.sum(LedgerEntry.amount_cents), 0)).where(
            LedgerEntry.user_id == labeler_id,
            LedgerEntry.pool_id == pool.id,
            LedgerEntry.account == LedgerAccount.BALANCE,
            LedgerEntry.kind == LedgerKind.EARNING,
            LedgerEntry.created_at > start,
        )
    ).one()
    pending = session.exec(
        select(func.coalesce(func.sum(Assignment.reward_cents), 0)).where(
            Assignment.pool_id == pool.id,
            Assignment.labeler_id == labeler_id,
            Assignment.status == AssignmentStatus.SUBMITTED,
            Assignment.submitted_at > start,
        )
    ).one()
    return {"income_sum_for_last_24_hours": (int(paid) + int(pending)) / 100}


def acceptance_rate(
    session: Session, *, pool: Pool, labeler_id: int, since, history: int | None
) -> dict:
    query = (
        select(Assignment.status)
        .where(
            Assignment.pool_id == pool.id,
            Assignment.labeler_id == labeler_id,
            Assignment.status.in_([AssignmentStatus.ACCEPTED, AssignmentStatus.REJECTED]),
            Assignment.reviewed_at.is_not(None),
        )
        .order_by(Assignment.reviewed_at.desc(), Assignment.id.desc())
    )
    query = _after(query, Assignment.reviewed_at, since)
    if history:
        query = query.limit(history)
    statuses = session.exec(query).all()
    total = len(statuses)
    accepted = sum(1 for s in statuses if s == AssignmentStatus.ACCEPTED)
    rate = 100.0 * accepted / total if total else 0.0
    return {
        "total_assignments_count": total,
        "accepted_assignments_rate": rate,
        "rejected_assignments_rate": 100.0 - rate if total else 0.0,
    }


def captcha(session: Session, *, pool: Pool, labeler_id: int, since, history: int | None) -> dict:
    """Answered captchas: how many, and the share solved / failed (0-100)."""
    query = (
        select(CaptchaChallenge.solved)
        .where(
            CaptchaChallenge.pool_id == pool.id,
            CaptchaChallenge.labeler_id == labeler_id,
            CaptchaChallenge.solved.is_not(None),
        )
        .order_by(CaptchaChallenge.id.desc())
    )
    query = _after(query, CaptchaChallenge.answered_at, since)
    if history:
        query = query.limit(history)
    solved = [bool(flag) for flag in session.exec(query).all()]
    total = len(solved)
    rate = 100.0 * sum(solved) / total if total else 0.0
    return {
        "stored_results_count": total,
        "success_rate": rate,
        "fail_rate": 100.0 - rate if total else 0.0,
    }


def collect(
    session: Session,
    collector: CollectorConfig,
    *,
    pool: Pool,
    labeler_id: int,
    since: datetime | None,
    context: dict | None = None,
) -> dict:
    """The figures of one collector for one labeler."""
    kind = collector.type.value
    params = collector.parameters
    history = collector.history_size
    common = {"pool": pool, "labeler_id": labeler_id, "since": since}
    if kind == "ASSIGNMENT_SUBMIT_TIME":
        return submit_time(
            session, **common, history=history, threshold=params["fast_submit_threshold_seconds"]
        )
    if kind == "MAJORITY_VOTE":
        return majority_vote(
            session, **common, history=history, threshold=params["answer_threshold"]
        )
    if kind == "GOLDEN_SET":
        return golden_set(session, **common, history=history)
    if kind == "SKIPPED_IN_ROW_ASSIGNMENTS":
        return skipped_in_row(session, **common)
    if kind == "ANSWER_COUNT":
        return answer_count(session, **common)
    if kind == "INCOME":
        return income(session, **common)
    if kind == "ACCEPTANCE_RATE":
        return acceptance_rate(session, **common, history=history)
    if kind == "CAPTCHA":
        return captcha(session, **common, history=history)
    if kind == "USERS_ASSESSMENT":
        return {"pool_access_revoked_reason": (context or {}).get("revoked_reason", "")}
    return {}
