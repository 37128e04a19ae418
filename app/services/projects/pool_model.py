"""A pool's model as one more labeler: its predictions fill each task's preliminary-answer
slot (next to Toloka's ``baseline_solutions``), weighted by its accuracy on the pool's
control tasks. The predicting runs as a job (``workers/jobs/pool_model.py``), queued when
a pool gets a model and whenever tasks are added to a pool that has one."""

from __future__ import annotations

from sqlalchemy import Float, String, bindparam, text, update
from sqlmodel import Session, select

from aggregation.incremental import (
    accuracy,
    answer_weight,
    combined,
    confidence,
    preliminary_scores,
)
from app.db.models import Job, MediaFile, Pool, Project, Task, TaskKind, User
from app.services.jobs.records import submit_job
from app.services.projects.projects import get_project, list_options

MODEL_JOB_KIND = "pool_model_predictions"

# the model's answer; the confidence only of a task nobody has answered yet (a submit
# keeps an answered task's confidence, under its row lock)
_RECORD = text(
    "UPDATE task SET model_answer = :answer, model_probability = :probability, "
    "confidence = CASE WHEN votes IS NULL THEN :confidence ELSE confidence END "
    "WHERE id = :id"
).bindparams(
    bindparam("answer", type_=String),
    bindparam("probability", type_=Float),
    bindparam("confidence", type_=Float),
)


def queue_model_predictions(session: Session, *, pool: Pool) -> Job | None:
    """When the pool names a model: queue the job that predicts its tasks (commits)."""
    if pool.model_id is None:
        return None
    return submit_job(
        session,
        kind=MODEL_JOB_KIND,
        owner=session.get(User, pool.owner_id),
        payload={"pool_id": pool.id, "model_id": pool.model_id},
    )


def forget_model_answers(session: Session, *, pool: Pool) -> None:
    """The pool's model changed: its old answers and tally no longer count (flush only)."""
    session.execute(
        update(Task)
        .where(Task.pool_id == pool.id)
        .values(model_answer=None, model_probability=None)
    )
    pool.model_control_answers = pool.model_control_correct = 0
    session.add(pool)
    session.flush()


def option_values(session: Session, *, pool: Pool) -> list[str]:
    return [o.value for o in list_options(session, project=session.get(Project, pool.project_id))]


def tasks_to_predict(session: Session, *, pool: Pool) -> list[tuple]:
    """(task id, kind, known answer, baseline solutions, media file) of every control task
    and of each general task the model has not answered yet, with a stored image."""
    rows = session.exec(
        select(Task, MediaFile)
        .join(MediaFile, MediaFile.id == Task.media_id)
        .where(
            Task.pool_id == pool.id,
            (Task.kind == TaskKind.CONTROL)
            | ((Task.kind == TaskKind.GENERAL) & Task.model_probability.is_(None)),
        )
        .order_by(Task.id)
    ).all()
    return [
        (task.id, task.kind, task.known_answer, task.baseline_solutions, media_file)
        for task, media_file in rows
    ]


def record_control_tally(session: Session, *, pool_id: int, answered: int, right: int) -> float:
    """Store the model's control-task tally (flush only); returns its answer weight."""
    pool = session.get(Pool, pool_id)
    pool.model_control_answers, pool.model_control_correct = answered, right
    session.add(pool)
    session.flush()
    return (
        answer_weight(accuracy(right, answered), len(option_values(session, pool=pool)))
        if answered
        else 0.0
    )


def record_predictions(
    session: Session,
    *,
    values: list[str],
    weight: float,
    predictions: list[tuple[int, list | None, str, float]],
) -> None:
    """(task id, baseline solutions, label, probability) → the tasks' model answers (flush
    only); a label that is not an option value is no answer."""
    rows = []
    for task_id, baseline, label, probability in predictions:
        answer = label if label in values else None
        prior = preliminary_scores(baseline, answer, model_weight_=weight, values=values)
        rows.append(
            {
                "id": task_id,
                "answer": answer,
                "probability": float(probability),
                "confidence": confidence(combined(None, prior), values),
            }
        )
    if rows:
        session.connection().execute(_RECORD, rows)


def set_preselect_model_answer(
    session: Session, *, requester: User, project_id: int, on: bool
) -> Project:
    """Turn "pre-select the model's answer" on or off for a project (commits). Off by
    default: labelers then never see a model's guess (no anchoring)."""
    project = get_project(session, requester=requester, project_id=project_id)
    project.preselect_model_answer = bool(on)
    session.add(project)
    session.commit()
    session.refresh(project)
    return project
