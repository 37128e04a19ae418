"""A pool's model as one more labeler: its predictions fill each task's preliminary-answer
slot (next to Toloka's ``baseline_solutions``), weighed by its confusion matrix, learned
like a person's from the pool's control tasks and from its confident tasks whose label the
people's own top answer agrees with (``aggregation.incremental.ModelVoter``). The
predicting runs as a job (``workers/jobs/pool_model.py``), queued when a pool gets a model
and whenever tasks are added to a pool that has one.

Retraining: a pool with ``model_retrain_every = N`` gets a new model every N newly
confident tasks: a job gathers the confident labels (plus the control tasks and the images
of the pool's base collection) into a collection and trains on it (the settings of the
pool's current model, else the defaults for the collection's size); when that training
completes, the pool's model becomes the new one and answers the tasks again."""

from __future__ import annotations

from sqlalchemy import Float, String, bindparam, text, update
from sqlmodel import Session, select

from aggregation.incremental import (
    ModelVoter,
    combined,
    confidence,
    overlap_after,
    preliminary_scores,
)
from app.db.models import Job, MediaFile, Pool, Project, Task, TaskKind, User
from app.errors import NotFound, ValidationFailed
from app.services.jobs.records import submit_job
from app.services.projects.projects import get_project, list_options
from app.services.quality.answer_weights import pool_model_voter

MODEL_JOB_KIND = "pool_model_predictions"

RETRAIN_JOB_KIND = "pool_model_retraining"
LEARN_CONFIDENCE = 0.9
"""The confidence a task needs before the model learns from it (when the pool sets none)."""

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


_RECORD_CONTROL = text(
    "UPDATE task SET model_answer = :answer, model_probability = :probability WHERE id = :id"
).bindparams(bindparam("answer", type_=String), bindparam("probability", type_=Float))


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
    pool.model_confusion = None
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


def record_control_answers(
    session: Session, *, pool_id: int, answers: list[tuple[int, str, str, float]]
) -> ModelVoter | None:
    """The model's answers to the control tasks ``(task id, known answer, its label, its
    probability)``: stored, tallied and counted into its confusion (flush only); returns
    the model as a voter."""
    pool = session.get(Pool, pool_id)
    if answers:
        session.connection().execute(
            _RECORD_CONTROL,
            [{"id": tid, "answer": label, "probability": float(p)} for tid, _, label, p in answers],
        )
    pool.model_control_answers = len(answers)
    pool.model_control_correct = sum(label == known for _, known, label, _ in answers)
    refresh_model_confusion(session, pool=pool)
    return pool_model_voter(pool, option_values(session, pool=pool))


def record_predictions(
    session: Session,
    *,
    values: list[str],
    model: ModelVoter | None,
    predictions: list[tuple[int, list | None, str, float]],
) -> None:
    """(task id, baseline solutions, label, probability) → the tasks' model answers (flush
    only); a label that is not an option value is no answer."""
    rows = []
    for task_id, baseline, label, probability in predictions:
        answer = label if label in values else None
        prior = preliminary_scores(baseline, answer, model=model, values=values)
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


# ------------------------------------------------------------------ what the model learns from


def engine_labels(
    session: Session, *, pool: Pool, min_confidence: float = 0.0
) -> list[tuple[int, int | None, str, float, str, str | None]]:
    """(task id, media id, label, confidence, the people's own top answer, the model's
    answer) of each general task with answers, as dynamic overlap sees it (the people's
    weighted votes plus the preliminary answers), at ``min_confidence`` or above."""
    values = option_values(session, pool=pool)
    voter = pool_model_voter(pool, values)
    found = session.exec(
        select(Task.id, Task.media_id, Task.votes, Task.baseline_solutions, Task.model_answer)
        .where(
            Task.pool_id == pool.id,
            Task.kind == TaskKind.GENERAL,
            Task.votes.is_not(None),
            Task.confidence >= min_confidence,
        )
        .order_by(Task.id)
    ).all()
    out = []
    for task_id, media_id, votes, baseline, model_answer in found:
        if not votes:
            continue
        people = max(values, key=lambda v: votes.get(v, 0.0))
        prior = preliminary_scores(baseline, model_answer, model=voter, values=values)
        scores = combined(votes, prior)
        chosen = max(values, key=lambda v: scores.get(v, 0.0))
        out.append((task_id, media_id, chosen, confidence(scores, values), people, model_answer))
    return out


def confident_labels(session: Session, *, pool: Pool) -> list[tuple[int, int | None, str, float]]:
    """(task id, media id, label, confidence) of each general task that is confident (at the
    pool's minimum confidence, else ``LEARN_CONFIDENCE``) with the people's own top answer as
    its label: a task the model's answer alone carried, against the people, is left out."""
    return [row[:4] for row in _agreed(session, pool)]


def _agreed(session: Session, pool: Pool) -> list[tuple]:
    """``engine_labels`` rows at the learning threshold whose label the people agree with."""
    threshold = pool.min_confidence if pool.min_confidence is not None else LEARN_CONFIDENCE
    rows = engine_labels(session, pool=pool, min_confidence=threshold)
    return [row for row in rows if row[2] == row[4]]


def refresh_model_confusion(session: Session, *, pool: Pool) -> dict:
    """Count the model's answers against the control tasks' known answers and the labels of
    the tasks the people made confident; store them as the pool's ``model_confusion``."""
    counts: dict[str, dict[str, int]] = {}

    def add(truth: str, answer: str) -> None:
        row = counts.setdefault(truth, {})
        row[answer] = row.get(answer, 0) + 1

    for known, answer in session.exec(
        select(Task.known_answer, Task.model_answer).where(
            Task.pool_id == pool.id,
            Task.kind == TaskKind.CONTROL,
            Task.model_answer.is_not(None),
            Task.known_answer.is_not(None),
        )
    ).all():
        add(known, answer)
    for _, _, label, _, _, model_answer in _agreed(session, pool):
        if model_answer is not None:
            add(label, model_answer)
    pool.model_confusion = counts or None
    session.add(pool)
    session.flush()
    return counts


def set_baseline_solutions(
    session: Session, *, requester: User, task_id: int, solutions: list | None
) -> Task:
    """Replace a general task's preliminary answers (checked by the caller) and settle its
    confidence as a submit would, under the task's row lock: a task whose every slot is
    answered and that is now below the pool's minimum gets one more slot, up to the maximum
    overlap (commits)."""
    locked = select(Task).where(Task.id == task_id).with_for_update()
    task = session.exec(locked.execution_options(populate_existing=True)).first()
    pool = session.get(Pool, task.pool_id) if task is not None else None
    if task is None or pool is None or pool.owner_id != requester.id:
        raise NotFound("No such task.")
    if task.kind != TaskKind.GENERAL:
        raise ValidationFailed(
            "baseline_solutions are preliminary answers of general tasks; a control task has "
            "known_solutions.",
            errors={"baseline_solutions": "NOT_SUPPORTED"},
        )
    values = option_values(session, pool=pool)
    task.baseline_solutions = solutions or None
    prior = preliminary_scores(
        task.baseline_solutions, task.model_answer, model=pool_model_voter(pool, values),
        values=values,
    )  # fmt: skip
    scores = combined(task.votes, prior)
    task.confidence = confidence(scores, values) if scores else None
    if pool.max_overlap is not None:
        overlap = task.overlap or pool.overlap
        more = overlap_after(
            submitted=task.submitted_count,
            overlap=overlap,
            confidence=task.confidence or 0.0,
            min_confidence=pool.min_confidence or 1.0,
            max_overlap=pool.max_overlap,
        )
        if more != overlap:
            task.overlap = more
    session.add(task)
    session.commit()
    session.refresh(task)
    return task


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
