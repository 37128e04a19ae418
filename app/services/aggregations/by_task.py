"""One task aggregated on request, weighting each answer by its labeler's skill
(Toloka's ``aggregate-by-task`` with ``WEIGHTED_DYNAMIC_OVERLAP``)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, select

from aggregation.skill_weighted import skill_weighted
from app.db.models import (
    Answer,
    Assignment,
    AssignmentStatus,
    Project,
    Task,
    TaskKind,
    User,
    UserSkill,
)
from app.errors import Conflict, NotFound
from app.services.projects.pools import get_pool
from app.services.projects.projects import list_options
from app.services.quality.skills import get_skill

COUNTED = (AssignmentStatus.SUBMITTED, AssignmentStatus.ACCEPTED)


@dataclass
class TaskAggregate:
    """The task's label, its confidence (0-1) and how many answers it rests on."""

    pool_id: int
    task_id: int
    label: str
    confidence: float
    answers: int


def aggregate_task(
    session: Session, *, requester: User, pool_id: int, task_id: int, skill_id: int
) -> TaskAggregate:
    """Aggregate the counted answers (submitted or accepted, not excluded) of one general
    task by the labelers' values of the requester's skill ``skill_id``."""
    pool = get_pool(session, requester=requester, pool_id=pool_id)
    task = session.get(Task, task_id)
    if task is None or task.pool_id != pool.id:
        raise NotFound("No such task in this pool.")
    if task.kind != TaskKind.GENERAL:
        raise Conflict("Control and training tasks have a known answer; nothing to aggregate.")
    skill = get_skill(session, requester=requester, skill_id=skill_id)
    given = session.exec(
        select(Answer.labeler_id, Answer.value)
        .join(Assignment, Assignment.id == Answer.assignment_id)
        .where(
            Answer.task_id == task.id,
            Answer.excluded.is_(False),
            Assignment.status.in_(list(COUNTED)),
        )
        .order_by(Answer.id)
    ).all()
    if not given:
        raise Conflict("This task has no answers yet.")
    values = dict(
        session.exec(
            select(UserSkill.user_id, UserSkill.value).where(
                UserSkill.skill_id == skill.id,
                UserSkill.user_id.in_({labeler for labeler, _ in given}),
            )
        ).all()
    )
    labels = [o.value for o in list_options(session, project=session.get(Project, pool.project_id))]
    label, confidence = skill_weighted(
        [(value, values.get(labeler)) for labeler, value in given], labels
    )
    return TaskAggregate(pool.id, task.id, label, confidence, len(given))
