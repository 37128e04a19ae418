"""What dynamic overlap saved a pool: answers bought against the fixed (maximum) overlap,
the money that kept, answers per task, and the model's accuracy on control tasks."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import case, func
from sqlmodel import Session, select

from app.db.models import Pool, Task, TaskKind, User
from app.services.money.ledger import fee_cents
from app.services.projects.pools import get_pool


@dataclass
class OverlapSavings:
    """A dynamic-overlap pool's figures (``done``: tasks that need no more answers)."""

    max_overlap: int
    general_tasks: int
    done_tasks: int
    answers: int  # answers bought so far, on every general task
    done_answers: int  # of them, on the tasks that are done
    answer_cost_cents: float  # one answer's share of a suite's price and fee
    histogram: list[tuple[str, int]] = field(default_factory=list)  # answers → tasks
    model_control_answers: int = 0
    model_control_correct: int = 0
    has_model: bool = False

    @property
    def fixed_answers(self) -> int:
        """What the done tasks would have cost at the fixed (maximum) overlap."""
        return self.done_tasks * self.max_overlap

    @property
    def saved_answers(self) -> int:
        return max(0, self.fixed_answers - self.done_answers)

    @property
    def saved_cents(self) -> int:
        return round(self.saved_answers * self.answer_cost_cents)

    @property
    def answers_per_task(self) -> float | None:
        return self.done_answers / self.done_tasks if self.done_tasks else None

    @property
    def bought_share(self) -> float | None:
        """Answers bought as a share of fixed overlap (done tasks)."""
        return self.done_answers / self.fixed_answers if self.fixed_answers else None

    @property
    def model_accuracy(self) -> float | None:
        if not self.has_model or not self.model_control_answers:
            return None
        return self.model_control_correct / self.model_control_answers


def get_overlap_savings(
    session: Session, *, requester: User, pool_id: int
) -> OverlapSavings | None:
    """The savings of one of the requester's pools; None unless it has dynamic overlap."""
    pool: Pool = get_pool(session, requester=requester, pool_id=pool_id)
    if pool.max_overlap is None:
        return None
    overlap = func.coalesce(Task.overlap, pool.overlap)
    done = case((Task.submitted_count >= overlap, 1), else_=0)
    rows = session.exec(
        select(Task.submitted_count, done, func.count(Task.id))
        .where(Task.pool_id == pool.id, Task.kind == TaskKind.GENERAL)
        .group_by(Task.submitted_count, done)
    ).all()
    by_answers: dict[int, int] = {}
    general = done_tasks = answers = done_answers = 0
    for submitted, is_done, n in rows:
        submitted, n = int(submitted), int(n)
        general += n
        answers += submitted * n
        by_answers[submitted] = by_answers.get(submitted, 0) + n
        if is_done:
            done_tasks += n
            done_answers += submitted * n
    top = max([pool.max_overlap, *by_answers])
    per_suite = pool.reward_cents + fee_cents(pool.reward_cents, pool.fee_percent)
    return OverlapSavings(
        max_overlap=pool.max_overlap,
        general_tasks=general,
        done_tasks=done_tasks,
        answers=answers,
        done_answers=done_answers,
        answer_cost_cents=per_suite / max(pool.general_per_suite, 1),
        histogram=[
            (f"{k} answer{'s' if k != 1 else ''}", by_answers.get(k, 0)) for k in range(top + 1)
        ],
        model_control_answers=pool.model_control_answers,
        model_control_correct=pool.model_control_correct,
        has_model=pool.model_id is not None,
    )
