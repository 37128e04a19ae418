"""Row locks and slot counters shared by the assignment engine and the submit path.

Task counters are always changed in task-id order (rows locked ``FOR NO KEY UPDATE`` in
that order on PostgreSQL), so concurrent writers never deadlock on them.
"""

from __future__ import annotations

from collections import Counter

from sqlmodel import Session, select

from app.db.engine import is_sqlite
from app.db.models import Assignment, AssignmentStatus, AssignmentTask, Task, TaskKind, User
from app.errors import NotFound
from app.services.accounts.users import TokenLabeler
from app.services.labeling import sql
from app.services.webhooks import events as webhooks

# The webhook event of each way a suite ends before it is submitted.
END_EVENTS = {
    AssignmentStatus.EXPIRED: "ASSIGNMENT_EXPIRED",
    AssignmentStatus.SKIPPED: "ASSIGNMENT_SKIPPED",
}


def on_pg(session: Session) -> bool:
    return not is_sqlite(session.get_bind())


def bump_tasks(session: Session, task_ids, column: str, delta: int) -> list[tuple]:
    """Add ``delta`` to a counter of tasks, locking rows in id order; returns
    (id, kind, new value, overlap) per task."""
    ids = sorted(set(task_ids))
    if not ids:
        return []
    statement = sql.BUMP[column, on_pg(session)]
    return list(session.connection().execute(statement, {"ids": ids, "delta": delta}).all())


def release_slots(session: Session, assignment_ids: list[int]) -> None:
    """Give the general-task slots of expired or skipped suites back (flush only)."""
    if not assignment_ids:
        return
    rows = session.exec(
        select(AssignmentTask.task_id)
        .join(Task, Task.id == AssignmentTask.task_id)
        .where(AssignmentTask.assignment_id.in_(assignment_ids), Task.kind == TaskKind.GENERAL)
    ).all()
    by_count: dict[int, list[int]] = {}
    for task_id, n in Counter(rows).items():
        by_count.setdefault(n, []).append(task_id)
    for n, task_ids in sorted(by_count.items()):
        bump_tasks(session, task_ids, "taken_count", -n)


def end_assignment(session: Session, assignment: Assignment, status: AssignmentStatus) -> None:
    """Expire or skip an active suite: free its slots, tell the pool's subscribers (flush)."""
    assignment.status = status
    session.add(assignment)
    session.flush()
    release_slots(session, [assignment.id])
    if status in END_EVENTS:
        webhooks.emit(
            session,
            pool_id=assignment.pool_id,
            event_type=END_EVENTS[status],
            assignment_id=assignment.id,
        )


def lock_own(session: Session, *, labeler: User | TokenLabeler, assignment_id: int) -> Assignment:
    """The labeler's assignment, row-locked on PostgreSQL (else ``NotFound``)."""
    params = {"assignment_id": assignment_id, "labeler_id": labeler.id}
    assignment = session.exec(sql.pick(sql.LOCK_OWN, on_pg(session)), params=params).first()
    if assignment is None:
        raise NotFound("No such suite.")
    return assignment
