"""A banned labeler's answers in a finished pool stay counted unless the requester chooses
otherwise: excluding them re-issues their tasks, at a cost shown first and confirmed.

While a pool runs, its ``exclude_banned_answers`` setting applies at ban time (the pool's
budget is still reserved). A pool that is done is never reopened as a side effect of a ban:
``preview_exclusion`` says what leaving it costs, ``exclude_answers`` does it for the
confirmed amount. Lifting the ban counts excluded answers again where their slots are free.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import Session, select

from app.db.models import Answer, Assignment, AssignmentStatus, Pool, PoolStatus, Task, TaskKind
from app.db.raw import rows
from app.db.types import utcnow
from app.errors import Conflict, InsufficientFunds
from app.services.money import ledger
from app.services.quality import overlap, sql
from app.services.webhooks import events as webhooks


class CostChanged(Conflict):
    """The confirmed cost is not the cost now (answers or prices moved in between)."""

    code = "COST_CHANGED"


@dataclass
class ExclusionPreview:
    """What excluding a labeler's answers from a pool would do."""

    pool: Pool
    labeler_id: int
    answers: int  # counted answers that would leave the results
    slots: int  # general-task slots that would go back to other labelers
    cost_cents: int  # rewards of the re-issued suites with the platform fee
    to_reserve_cents: int  # the part the pool's reservation does not already cover
    balance_cents: int
    reopens: bool  # the pool is closed and would open again

    @property
    def affordable(self) -> bool:
        """Whether the requester's balance covers what must be reserved."""
        return self.to_reserve_cents <= self.balance_cents


def is_finished(pool: Pool) -> bool:
    """A pool that closed on its own because every task has its answers."""
    return pool.status == PoolStatus.CLOSED and (pool.close_reason or "").upper() == "COMPLETED"


def _counted(session: Session, *, pool: Pool, labeler_id: int) -> list[Answer]:
    return list(
        session.exec(
            select(Answer).where(
                Answer.pool_id == pool.id,
                Answer.labeler_id == labeler_id,
                Answer.excluded.is_(False),
            )
        )
    )


def is_banned(session: Session, *, pool: Pool, labeler_id: int) -> bool:
    """Whether an active ban keeps the labeler out of the pool now."""
    params = {
        "labeler_id": labeler_id,
        "requester_id": pool.owner_id,
        "now": utcnow(),
        "project_id": pool.project_id,
        "pool_id": pool.id,
    }
    return bool(rows(session.connection(), sql.ACTIVE_BAN_ID, params))


def _preview(session: Session, *, pool: Pool, labeler_id: int) -> ExclusionPreview:
    answers = _counted(session, pool=pool, labeler_id=labeler_id)
    general = set(
        session.exec(
            select(Task.id).where(
                Task.id.in_({a.task_id for a in answers} or {-1}), Task.kind == TaskKind.GENERAL
            )
        )
    )
    slots = sum(1 for a in answers if a.task_id in general)
    cost = overlap.reissue_cost(pool, slots) if slots else 0
    reserved = max(ledger.get_pool_reserved(session, pool=pool), 0)
    reopens = slots > 0 and pool.status == PoolStatus.CLOSED
    return ExclusionPreview(
        pool=pool,
        labeler_id=labeler_id,
        answers=len(answers),
        slots=slots,
        cost_cents=cost,
        to_reserve_cents=max(cost - reserved, 0) if slots else 0,
        balance_cents=ledger.get_balance(session, user=pool.owner_id),
        reopens=reopens,
    )


def preview_exclusion(
    session: Session, *, requester_id: int, pool_id: int, labeler_id: int
) -> ExclusionPreview:
    """What excluding the labeler's counted answers from the pool would cost and do."""
    pool = overlap.owned_pool(session, requester_id=requester_id, pool_id=pool_id)
    return _preview(session, pool=pool, labeler_id=labeler_id)


def finished_pools_to_review(
    session: Session, *, requester_id: int, labeler_id: int
) -> list[ExclusionPreview]:
    """The requester's finished pools where the banned labeler still has counted answers."""
    pools = session.exec(
        select(Pool)
        .where(
            Pool.owner_id == requester_id,
            Pool.id.in_(
                select(Answer.pool_id).where(
                    Answer.labeler_id == labeler_id, Answer.excluded.is_(False)
                )
            ),
        )
        .order_by(Pool.id)
    ).all()
    return [
        _preview(session, pool=pool, labeler_id=labeler_id)
        for pool in pools
        if is_finished(pool) and is_banned(session, pool=pool, labeler_id=labeler_id)
    ]


def exclude_answers(
    session: Session, *, requester_id: int, pool_id: int, labeler_id: int, confirmed_cents: int
) -> ExclusionPreview:
    """Exclude a banned labeler's answers from the pool and re-issue their tasks.

    ``confirmed_cents`` is the cost the requester was shown; a different cost now raises
    ``CostChanged`` (with the new figure). A closed pool reopens with the cost reserved
    first; without the funds nothing changes (``InsufficientFunds``). Returns the preview
    as it was when done.
    """
    pool = overlap.owned_pool(session, requester_id=requester_id, pool_id=pool_id)
    if not is_banned(session, pool=pool, labeler_id=labeler_id):
        raise Conflict("Only a banned labeler's answers can be excluded here.")
    preview = _preview(session, pool=pool, labeler_id=labeler_id)
    if preview.cost_cents != int(confirmed_cents):
        raise CostChanged(
            f"Excluding these answers costs {ledger.dollars(preview.cost_cents)} now; "
            "confirm that amount.",
            payload={"cost": preview.cost_cents / 100},
        )
    if preview.answers == 0:
        return preview
    freed = overlap.give_back(session, _counted(session, pool=pool, labeler_id=labeler_id))
    if pool.status == PoolStatus.CLOSED and freed:
        if not overlap.reopen_if_completed(session, pool=pool, slots=freed, force=True):
            session.rollback()
            raise InsufficientFunds(
                f"Re-issuing the tasks needs {ledger.dollars(preview.to_reserve_cents)} "
                f"reserved; the balance is {ledger.dollars(preview.balance_cents)}.",
                payload={"required": preview.to_reserve_cents / 100},
            )
    session.commit()
    session.refresh(pool)
    return preview


def restore_answers(session: Session, *, pool: Pool, labeler_id: int) -> int:
    """Count the labeler's excluded answers again where their tasks still have a free slot
    (answers of rejected suites stay out); flush only. Returns how many came back.

    An open pool that this completes closes as COMPLETED, as the last submit would."""
    excluded = list(
        session.exec(
            select(Answer)
            .join(Assignment, Assignment.id == Answer.assignment_id)
            .where(
                Answer.pool_id == pool.id,
                Answer.labeler_id == labeler_id,
                Answer.excluded.is_(True),
                Assignment.status.in_([AssignmentStatus.SUBMITTED, AssignmentStatus.ACCEPTED]),
            )
        )
    )
    if not excluded:
        return 0
    overlap.retake(session, pool=pool, answers=excluded)
    back = sum(1 for a in excluded if not a.excluded)
    if back and pool.status == PoolStatus.OPEN:
        unfinished = session.exec(
            select(func.count())
            .select_from(Task)
            .where(
                Task.pool_id == pool.id,
                Task.kind == TaskKind.GENERAL,
                Task.submitted_count < func.coalesce(Task.overlap, pool.overlap),
            )
        ).one()
        if not unfinished:
            # the same close as the labeling path's last submit (pool_state.mark_closed,
            # which quality may not import: projects imports quality)
            pool.status = PoolStatus.CLOSED
            pool.close_reason = "COMPLETED"
            pool.closed_at = utcnow()
            session.add(pool)
            session.flush()
            webhooks.emit(
                session, pool_id=pool.id, event_type="POOL_CLOSED", close_reason="COMPLETED"
            )
            ledger.release_pool_reservation(
                session, pool=pool, memo="Released on close (completed)"
            )
    return back
