"""Giving overlap back (banned or rejected answers), raising it, and reopening a pool.

Invariant kept here: ``Answer.excluded`` is True exactly when the answer's slot was given
back (``Task.taken_count`` and ``submitted_count`` decremented), so a slot is never
returned twice and a task never holds more counted answers than its overlap.
"""

from __future__ import annotations

import math
from collections import Counter

from sqlalchemy import case, func, update
from sqlmodel import Session, select

from app.db.models import Answer, Pool, PoolStatus, Task, TaskKind
from app.errors import InsufficientFunds, NotFound
from app.services.money import ledger
from app.services.quality.answer_weights import recount_votes


def owned_pool(session: Session, *, requester_id: int, pool_id: int) -> Pool:
    """The requester's pool; someone else's id → NotFound."""
    pool = session.get(Pool, pool_id)
    if pool is None or pool.owner_id != requester_id:
        raise NotFound("No such pool.")
    return pool


def _expire_tasks(session: Session, task_ids: set[int]) -> None:
    """Forget cached Task rows after a Core UPDATE so later reads see the new counters."""
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Task) and obj.id in task_ids:
            session.expire(obj)


def _bump_general(session: Session, counts: Counter, delta_sign: int) -> None:
    """Move both slot counters of general tasks by ``delta_sign * n`` (floored at 0)."""
    table = Task.__table__
    for task_id in sorted(counts):
        n = counts[task_id] * delta_sign
        values = {
            name: case((table.c[name] + n < 0, 0), else_=table.c[name] + n)
            for name in ("taken_count", "submitted_count")
        }
        session.execute(
            update(table)
            .where(table.c.id == task_id, table.c.kind == TaskKind.GENERAL)
            .values(values)
        )
    _expire_tasks(session, set(counts))


def give_back(session: Session, answers: list[Answer]) -> int:
    """Exclude the answers and return their general tasks' slots (flush only).

    Returns how many general-task slots were freed.
    """
    todo = [a for a in answers if not a.excluded]
    if not todo:
        return 0
    for answer in todo:
        answer.excluded = True
        session.add(answer)
    session.flush()
    kinds = dict(
        session.exec(select(Task.id, Task.kind).where(Task.id.in_({a.task_id for a in todo}))).all()
    )
    counts = Counter(a.task_id for a in todo if kinds.get(a.task_id) == TaskKind.GENERAL)
    _bump_general(session, counts, -1)
    recount_votes(session, counts)  # dynamic overlap: excluded answers no longer weigh
    return sum(counts.values())


def retake(session: Session, *, pool: Pool, answers: list[Answer]) -> None:
    """Count excluded answers again where their task still has a free slot (flush only)."""
    table = Task.__table__
    kinds = dict(
        session.exec(
            select(Task.id, Task.kind).where(Task.id.in_({a.task_id for a in answers} or {-1}))
        ).all()
    )
    for answer in sorted(answers, key=lambda a: a.task_id):
        if not answer.excluded:
            continue
        if kinds.get(answer.task_id) != TaskKind.GENERAL:
            answer.excluded = False
            session.add(answer)
            continue
        taken = session.execute(
            update(table)
            .where(
                table.c.id == answer.task_id,
                table.c.taken_count < func.coalesce(table.c.overlap, pool.overlap),
            )
            .values(
                taken_count=table.c.taken_count + 1, submitted_count=table.c.submitted_count + 1
            )
            .returning(table.c.id)
        ).first()
        if taken is not None:
            answer.excluded = False
            session.add(answer)
    _expire_tasks(session, {a.task_id for a in answers})
    session.flush()
    recount_votes(session, {a.task_id for a in answers})


def reissue_cost(pool: Pool, slots: int) -> int:
    """What re-issuing ``slots`` general-task slots costs (rewards of the suites + fee)."""
    suites = math.ceil(slots / max(pool.general_per_suite, 1))
    reward = suites * pool.reward_cents
    return reward + round(reward * (pool.fee_percent or 0.0) / 100)


def reopen_if_completed(session: Session, *, pool: Pool, slots: int, force: bool = False) -> bool:
    """Reopen a pool that closed as COMPLETED (or any closed pool when ``force``).

    Reserves the cost of the re-issued slots first; without the funds the pool stays
    closed (its tasks keep their free slots). Flush only.
    """
    if slots <= 0 or pool.status != PoolStatus.CLOSED:
        return False
    if not force and (pool.close_reason or "").upper() != "COMPLETED":
        return False
    cost = reissue_cost(pool, slots)
    try:
        if cost > ledger.get_pool_reserved(session, pool=pool):
            ledger.reserve_for_pool(session, pool=pool, amount_cents=cost, memo="Re-issued tasks")
    except InsufficientFunds:
        return False
    pool.status = PoolStatus.OPEN
    pool.close_reason = None
    pool.closed_at = None
    session.add(pool)
    session.flush()
    return True


def raise_overlap(session: Session, *, pool: Pool, task_ids: list[int], delta: int) -> int:
    """Raise the overlap of general tasks by ``delta`` (flush only); returns tasks changed."""
    if not task_ids or delta <= 0:
        return 0
    table = Task.__table__
    result = session.execute(
        update(table)
        .where(table.c.id.in_(sorted(set(task_ids))), table.c.kind == TaskKind.GENERAL)
        .values(overlap=func.coalesce(table.c.overlap, pool.overlap) + delta)
    )
    _expire_tasks(session, set(task_ids))
    return int(result.rowcount or 0)
