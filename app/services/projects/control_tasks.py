"""Control tasks: mark any task as control with its correct answer, or unmark it, and
see how the correct answers are distributed over the options."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func
from sqlmodel import Session, select

from app.db.models import AnswerOption, Pool, PoolStatus, Project, Task, TaskKind, User
from app.errors import Conflict, NotFound, ValidationFailed
from app.services import answer_sets
from app.services.figures_cache import page_figures
from app.services.projects.pools import get_pool
from app.services.projects.projects import list_options, normalize_answer
from app.services.projects.tally import recent_tally

UNBALANCED_RATIO = 0.5


def get_task(session: Session, *, requester: User, task_id: int) -> Task:
    """One task of one of the requester's pools (someone else's id → ``NotFound``)."""
    task = session.get(Task, task_id)
    pool = session.get(Pool, task.pool_id) if task else None
    if task is None or pool is None or pool.owner_id != requester.id:
        raise NotFound("No such task.")
    return task


def list_tasks(
    session: Session,
    *,
    requester: User,
    pool_id: int,
    kind: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[list[Task], int]:
    """A page of the pool's tasks in upload order, and how many there are in all."""
    pool = get_pool(session, requester=requester, pool_id=pool_id)
    query = select(Task).where(Task.pool_id == pool.id)
    count = select(func.count(Task.id)).where(Task.pool_id == pool.id)
    if kind:
        query = query.where(Task.kind == kind)
        count = count.where(Task.kind == kind)
    tasks = list(session.exec(query.order_by(Task.position, Task.id).offset(offset).limit(limit)))
    return tasks, int(session.exec(count).one())


def _editable(session: Session, task: Task) -> Pool:
    pool = session.get(Pool, task.pool_id)
    if pool.status == PoolStatus.ARCHIVED:
        raise Conflict("This pool is archived.")
    if task.taken_count or task.submitted_count:
        raise Conflict("Labelers already work on this task; it can no longer change kind.")
    return pool


def mark_control(
    session: Session, *, requester: User, task_id: int, answer: str | list[str]
) -> Task:
    """Make a task a control task with ``answer`` (an option value; with several answers
    a set: a list or JSON list of values) as its correct answer."""
    task = get_task(session, requester=requester, task_id=task_id)
    pool = _editable(session, task)
    project = session.get(Project, pool.project_id)
    values = [o.value for o in list_options(session, project=project)]
    try:
        answer = normalize_answer(project, values, answer)
    except answer_sets.BadAnswer as exc:
        if project.answer_type == answer_sets.MULTIPLE:
            message = f"The correct answer {exc}."
        else:
            message = f"Pick one of the answer options ({', '.join(values)})."
        raise ValidationFailed(message, errors={"answer": message}) from None
    if task.kind == TaskKind.TRAINING:
        task.known_answer = answer
    else:
        task.kind = TaskKind.CONTROL
        task.known_answer = answer
    session.add(task)
    session.commit()
    page_figures.forget_pool(task.pool_id)
    session.refresh(task)
    return task


def unmark_control(session: Session, *, requester: User, task_id: int) -> Task:
    """Turn a control task back into a general task (its known answer is dropped)."""
    task = get_task(session, requester=requester, task_id=task_id)
    _editable(session, task)
    task.kind = TaskKind.GENERAL
    task.known_answer = None
    task.hint = None
    session.add(task)
    session.commit()
    page_figures.forget_pool(task.pool_id)
    session.refresh(task)
    return task


def next_task(session: Session, *, requester: User, pool_id: int, after: Task) -> Task | None:
    """The next task after ``after`` in upload order that is not a control task yet."""
    pool = get_pool(session, requester=requester, pool_id=pool_id)
    return session.exec(
        select(Task)
        .where(
            Task.pool_id == pool.id,
            Task.kind == TaskKind.GENERAL,
            (Task.position > after.position)
            | ((Task.position == after.position) & (Task.id > after.id)),
        )
        .order_by(Task.position, Task.id)
        .limit(1)
    ).first()


@dataclass
class ControlDistribution:
    """Correct answers of control tasks per option, with guidance."""

    rows: list[tuple[AnswerOption, int]]
    controls: int
    general: int
    warnings: list[str] = field(default_factory=list)

    @property
    def share(self) -> float:
        """Control tasks as a fraction of all general + control tasks."""
        total = self.controls + self.general
        return self.controls / total if total else 0.0

    @property
    def chart(self) -> list[tuple[str, int]]:
        """(label, count) pairs for the bar chart."""
        return [(f"{option.label} ({option.value})", count) for option, count in self.rows]


def control_distribution(session: Session, *, requester: User, pool_id: int) -> ControlDistribution:
    """How control answers spread over the options; warns when unbalanced or too few."""
    pool = get_pool(session, requester=requester, pool_id=pool_id)
    options = list_options(session, project=session.get(Project, pool.project_id))
    tally = recent_tally(session, pool=pool)
    counts, general = tally.control_answers, tally.counts[TaskKind.GENERAL]
    rows = [(option, int(counts.get(option.value, 0))) for option in options]
    controls = sum(n for _, n in rows)
    result = ControlDistribution(rows=rows, controls=controls, general=general)
    if controls:
        top = max(n for _, n in rows)
        low = [option.label for option, n in rows if n < top * UNBALANCED_RATIO]
        if low:
            result.warnings.append(
                "Unbalanced control tasks: too few for "
                f"{', '.join(low)}. Aim for about the same number per option, or labelers "
                "can score well by always picking the common answer."
            )
        target = 0.01 if general >= 1000 else 0.05
        if result.share < target:
            result.warnings.append(
                f"Control tasks are {result.share:.1%} of the pool; aim for at least "
                f"{target:.0%} ({'large' if general >= 1000 else 'small'} pool)."
            )
        cap = controls // pool.control_per_suite if pool.control_per_suite else None
        if cap is not None and cap * max(pool.general_per_suite, 1) < general:
            result.warnings.append(
                f"A labeler sees each control task once, so each labeler can do at most {cap} "
                f"suites ({controls} control tasks ÷ {pool.control_per_suite} per suite)."
            )
    return result
