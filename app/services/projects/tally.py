"""A pool's tasks in figures: how many of each kind, answer slots, finished tasks.

One pass over the pool's tasks (grouped by kind) instead of a count per figure. Pages use
``recent_tally`` (kept a few seconds for large pools, see ``app.services.figures_cache``);
money decisions use ``count_tally``, always exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import case, func
from sqlmodel import Session, select

from app.db.models import Pool, Task, TaskKind
from app.services.figures_cache import page_figures

# From this many tasks a pool's page figures are reused for a few seconds.
LARGE_POOL_TASKS = 20_000


@dataclass(frozen=True)
class TaskTally:
    """``counts`` by kind (every kind present); over general tasks: ``general_slots`` (the
    answers they need, each task's overlap), ``general_done`` (tasks with all their
    answers), ``max_overlap``; ``control_answers``: control tasks per known answer."""

    counts: dict[str, int]
    general_slots: int = 0
    general_done: int = 0
    max_overlap: int = 0
    control_answers: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def count_tally(session: Session, *, pool: Pool) -> TaskTally:
    """Count now (two grouped queries over the pool's tasks)."""
    overlap = func.coalesce(Task.overlap, pool.overlap)
    rows = session.exec(
        select(
            Task.kind,
            func.count(),
            func.coalesce(func.sum(overlap), 0),
            func.coalesce(func.sum(case((Task.submitted_count >= overlap, 1), else_=0)), 0),
            func.coalesce(func.max(overlap), 0),
        )
        .where(Task.pool_id == pool.id)
        .group_by(Task.kind)
    ).all()
    counts = {kind.value: 0 for kind in TaskKind}
    slots = done = max_overlap = 0
    for kind, n, kind_slots, kind_done, kind_max in rows:
        counts[kind] = int(n)
        if kind == TaskKind.GENERAL:
            slots, done, max_overlap = int(kind_slots), int(kind_done), int(kind_max)
    controls: dict[str, int] = {}
    if counts[TaskKind.CONTROL]:
        controls = {
            str(answer): int(n)
            for answer, n in session.exec(
                select(Task.known_answer, func.count())
                .where(Task.pool_id == pool.id, Task.kind == TaskKind.CONTROL)
                .group_by(Task.known_answer)
            ).all()
        }
    return TaskTally(
        counts=counts,
        general_slots=slots,
        general_done=done,
        max_overlap=max_overlap,
        control_answers=controls,
    )


def recent_tally(session: Session, *, pool: Pool) -> TaskTally:
    """``count_tally`` for a page: exact for small pools, at most a few seconds old for large."""
    return page_figures.get(
        ("tally", pool.id, pool.overlap),
        lambda: count_tally(session, pool=pool),
        keep=lambda tally: tally.total >= LARGE_POOL_TASKS,
    )
