"""Answered pools for tests, written straight into the tables.

The assignment engine builds suites properly; these helpers only need rows that look like
its output: one assignment per (labeler, status) with its tasks and answers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta

from sqlmodel import Session

from app.db.models import Answer, Assignment, AssignmentTask, Pool, Task, User
from app.db.types import utcnow


def add_answers(
    session: Session,
    pool: Pool,
    answers: Mapping[int, Sequence[tuple[User, str]]]
    | Iterable[tuple[Task | int, Sequence[tuple[User, str]]]],
    status: str = "accepted",
    excluded: bool = False,
) -> list[Assignment]:
    """Give each task the listed ``(labeler, value)`` answers.

    ``answers`` maps task ids (table rows are unhashable) to answers, or is a list of
    ``(task or task id, answers)`` pairs. Every labeler gets one assignment (suite) in
    ``status`` holding all of their answers here. Returns the assignments created.
    """
    now = utcnow()
    pairs = answers.items() if isinstance(answers, Mapping) else answers
    by_labeler: dict[int, list[tuple[int, str]]] = {}
    for task, given in pairs:
        task_id = task if isinstance(task, int) else task.id
        for labeler, value in given:
            by_labeler.setdefault(labeler.id, []).append((task_id, value))
    assignments = []
    for labeler_id, items in by_labeler.items():
        assignment = Assignment(
            pool_id=pool.id,
            labeler_id=labeler_id,
            status=status,
            reward_cents=pool.reward_cents,
            expires_at=now + timedelta(hours=1),
            submitted_at=now if status != "active" else None,
        )
        session.add(assignment)
        session.flush()
        for position, (task_id, value) in enumerate(items):
            session.add(
                AssignmentTask(
                    assignment_id=assignment.id,
                    task_id=task_id,
                    position=position,
                    labeler_id=labeler_id,
                )
            )
            session.add(
                Answer(
                    assignment_id=assignment.id,
                    task_id=task_id,
                    pool_id=pool.id,
                    labeler_id=labeler_id,
                    value=value,
                    first_value=value,
                    excluded=excluded,
                )
            )
        assignments.append(assignment)
    session.commit()
    for assignment in assignments:
        session.refresh(assignment)
    return assignments


def add_answer_table(
    session: Session,
    pool: Pool,
    tasks: Mapping[str, Task],
    labelers: Mapping[str, User],
    rows: Sequence[tuple[str, str, str]],
    status: str = "accepted",
) -> list[Assignment]:
    """Answers from a ``(task key, worker key, label)`` table, e.g. a simulated crowd."""
    answers: dict[int, list[tuple[User, str]]] = {}
    for task_key, worker_key, label in rows:
        answers.setdefault(tasks[task_key].id, []).append((labelers[worker_key], label))
    return add_answers(session, pool, answers, status=status)


def add_simulated_crowd(session: Session, requester: User, crowd, **pool_fields):
    """A pool holding a simulated crowd (``aggregation.simulate_crowd``) as accepted answers.

    Returns ``(pool, tasks by key, labelers by key)``; answer options are the crowd's labels.
    """
    from tests.builders.pools import add_tasks, make_pool, make_project
    from tests.builders.users import make_labeler

    labels = sorted(set(crowd.answers["label"]) | set(crowd.truth))
    project = make_project(session, requester, options=labels)
    pool = make_pool(session, requester, project, **pool_fields)
    created = add_tasks(session, pool, general=len(crowd.truth))
    tasks = dict(zip(crowd.truth.index, created, strict=True))
    labelers = {key: make_labeler(session) for key in crowd.kinds.index}
    rows = crowd.answers[["task", "worker", "label"]].itertuples(index=False, name=None)
    add_answer_table(session, pool, tasks, labelers, list(rows))
    return pool, tasks, labelers
