"""A task's overlap changed after upload (Toloka's ``set-overlap-or-min``)."""

from __future__ import annotations

from sqlalchemy import case, update
from sqlmodel import Session

from app.db.models import Pool, PoolStatus, Task, TaskKind, User
from app.errors import Conflict, ValidationFailed
from app.services.projects.control_tasks import get_task

MAX_TASK_OVERLAP = 1000


def set_overlap_or_min(session: Session, *, requester: User, task_id: int, overlap: int) -> Task:
    """Set a general task's overlap to ``overlap``, or to the slots already taken when
    more labelers than that have it (it then stops being handed out).

    One conditional UPDATE, so a labeler taking a slot at the same moment is counted.
    Crowdlab keeps at least one slot per task: stopping a task nobody has taken
    (overlap 0) is refused.
    """
    task = get_task(session, requester=requester, task_id=task_id)
    pool = session.get(Pool, task.pool_id)
    if pool.status == PoolStatus.ARCHIVED:
        raise Conflict("This pool is archived.")
    if task.kind != TaskKind.GENERAL:
        raise ValidationFailed(
            "Control and training tasks are shown to every labeler; their overlap is fixed.",
            errors={"overlap": "NOT_SUPPORTED"},
        )
    if not 0 <= int(overlap) <= MAX_TASK_OVERLAP:
        raise ValidationFailed(
            f"overlap is 0..{MAX_TASK_OVERLAP}.", errors={"overlap": "VALUE_OUT_OF_RANGE"}
        )
    table = Task.__table__
    floor = case((table.c.taken_count > int(overlap), table.c.taken_count), else_=int(overlap))
    changed = session.execute(
        update(table)
        .where(table.c.id == task.id, floor >= 1)
        .values(overlap=floor)
        .returning(table.c.overlap)
    ).first()
    if changed is None:
        session.rollback()
        raise ValidationFailed(
            "Nobody has this task yet, and Crowdlab keeps at least one answer per task: "
            "set an overlap of 1 or more.",
            errors={"overlap": "NOT_SUPPORTED"},
        )
    session.commit()
    session.refresh(task)
    return task
