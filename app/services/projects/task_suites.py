"""Task suites the requester composes (Toloka's ``POST /task-suites``): each is handed out
whole, ``overlap`` times, in a pool that then holds only such suites (``fixed_suites``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import Session, select

from app.db.models import Pool, Task, TaskKind, TaskSuite, User
from app.errors import Conflict, ValidationFailed
from app.services.projects.pools import get_pool
from app.services.projects.upload_formats import TaskInput
from app.services.projects.uploads import add_tasks

MAX_SUITE_OVERLAP = 1000
MAX_SUITE_TASKS = 100


@dataclass
class SuiteInput:
    """One suite to create: its tasks (general, control or training) and its overlap."""

    overlap: int
    tasks: Sequence[TaskInput]


def _check(suite: SuiteInput, index: int) -> None:
    if not 1 <= int(suite.overlap) <= MAX_SUITE_OVERLAP:
        raise ValidationFailed(
            f"overlap is 1..{MAX_SUITE_OVERLAP}.", errors={f"{index}.overlap": "VALUE_OUT_OF_RANGE"}
        )
    if not 1 <= len(suite.tasks) <= MAX_SUITE_TASKS:
        raise ValidationFailed(
            f"A suite holds 1 to {MAX_SUITE_TASKS} tasks.", errors={f"{index}.tasks": "INVALID"}
        )
    if all(task.known_answer is not None for task in suite.tasks):
        raise ValidationFailed(
            "A suite needs at least one task without a known answer.",
            errors={f"{index}.tasks": "NO_GENERAL_TASK"},
        )


def create_task_suites(
    session: Session, *, requester: User, pool_id: int, suites: Sequence[SuiteInput]
) -> list[tuple[TaskSuite, list[Task]]]:
    """Create the suites and their tasks in one of the requester's pools, all or none.

    A pool holds either suites mixed from loose tasks or composed suites, never both: a pool
    with loose tasks refuses suites, and once it has suites it refuses loose tasks.
    """
    pool: Pool = get_pool(session, requester=requester, pool_id=pool_id)
    for index, suite in enumerate(suites):
        _check(suite, index)
    if pool.max_overlap is not None:
        raise Conflict(
            "This pool has dynamic overlap, which grows the overlap of single tasks; composed "
            "task suites go out a fixed number of times. Turn dynamic overlap off first."
        )
    if not pool.fixed_suites:
        loose = session.exec(
            select(func.count()).select_from(Task).where(Task.pool_id == pool.id)
        ).one()
        if loose:
            raise Conflict(
                "This pool mixes suites from its tasks; put composed task suites in a pool "
                "of their own."
            )
    try:
        pool.fixed_suites = True
        session.add(pool)
        rows = [TaskSuite(pool_id=pool.id, overlap=int(suite.overlap)) for suite in suites]
        session.add_all(rows)
        session.flush()
        items = [
            TaskInput(
                image=task.image,
                media_id=task.media_id,
                known_answer=task.known_answer,
                hint=task.hint,
                kind=task.kind,
                input_values=task.input_values,
                overlap=None if task.known_answer is not None else int(suite.overlap),
                suite_id=row.id,
            )
            for suite, row in zip(suites, rows, strict=True)
            for task in suite.tasks
        ]
        tasks = add_tasks(session, requester=requester, pool_id=pool.id, items=items)
    except Exception:
        session.rollback()
        raise
    out: list[tuple[TaskSuite, list[Task]]] = []
    for row in rows:
        session.refresh(row)
        out.append((row, [t for t in tasks if t.suite_id == row.id]))
    return out


def list_task_suites(
    session: Session,
    *,
    requester: User,
    pool_id: int | None = None,
    id_bounds: dict[str, int | None] | None = None,
    descending: bool = False,
    limit: int = 50,
) -> list[tuple[TaskSuite, Pool, list[Task]]]:
    """The requester's task suites (optionally of one pool) by id, with their tasks."""
    query = (
        select(TaskSuite, Pool)
        .join(Pool, Pool.id == TaskSuite.pool_id)
        .where(Pool.owner_id == requester.id)
    )
    if pool_id is not None:
        query = query.where(TaskSuite.pool_id == pool_id)
    ops = {"gt": "__gt__", "gte": "__ge__", "lt": "__lt__", "lte": "__le__"}
    for op, bound in (id_bounds or {}).items():
        if bound is not None:
            query = query.where(getattr(TaskSuite.id, ops[op])(bound))
    order = TaskSuite.id.desc() if descending else TaskSuite.id
    found = session.exec(query.order_by(order).limit(limit)).all()
    tasks: dict[int, list[Task]] = {}
    if found:
        for task in session.exec(
            select(Task)
            .where(Task.suite_id.in_([s.id for s, _ in found]))
            .order_by(Task.position, Task.id)
        ):
            tasks.setdefault(task.suite_id, []).append(task)
    return [(suite, pool, tasks.get(suite.id, [])) for suite, pool in found]


def remaining_overlap(suite: TaskSuite, tasks: Sequence[Task]) -> int:
    """How many more times the suite can go out (its fullest general task decides)."""
    taken = max((t.taken_count for t in tasks if t.kind == TaskKind.GENERAL), default=0)
    return max(0, suite.overlap - taken)
