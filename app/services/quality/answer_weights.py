"""How much a labeler's answer weighs in dynamic overlap (Toloka's aggregation by skill):
the pool's answer-weight skill, else the labeler's control accuracy in the requester's
pools. ``recount_votes`` rebuilds a task's votes when answers are excluded (a ban, a
rejection) or counted again, so an excluded answer no longer moves its task's confidence."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import JSON, Float, bindparam, text
from sqlmodel import Session, select

from aggregation.incremental import (
    ModelVoter,
    accuracy,
    answer_weight,
    combined,
    confidence,
    preliminary_scores,
)
from app.db.models import AnswerOption, Pool, Project, Task, TaskKind
from app.db.models.assignment import Answer
from app.db.raw import rows

CONTROL_SKILL = "Control accuracy"

_CONTROL_TALLY = text(
    "SELECT us.control_answers, us.control_correct FROM user_skill us "
    "JOIN skill s ON s.id = us.skill_id "
    "WHERE s.owner_id = :owner_id AND s.name = :name AND us.user_id = :labeler_id"
)
_SKILL_VALUE = text(
    "SELECT value FROM user_skill WHERE skill_id = :skill_id AND user_id = :labeler_id"
)
_STORE = text("UPDATE task SET votes = :votes, confidence = :confidence WHERE id = :id").bindparams(
    bindparam("votes", type_=JSON), bindparam("confidence", type_=Float)
)


def labeler_weight(conn, *, skill_id: int | None, owner_id: int, labeler_id: int, n: int) -> float:
    """A labeler's weight: the chosen skill's value, else their control accuracy."""
    if skill_id is not None:
        found = rows(conn, _SKILL_VALUE, {"skill_id": skill_id, "labeler_id": labeler_id})
        q = float(found[0][0]) / 100 if found else accuracy(0, 0)
    else:
        found = rows(
            conn,
            _CONTROL_TALLY,
            {"owner_id": owner_id, "name": CONTROL_SKILL, "labeler_id": labeler_id},
        )
        answered, right = found[0] if found else (0, 0)
        q = accuracy(int(right), int(answered))
    return answer_weight(q, n)


def pool_model_voter(pool: Pool, values: list[str]) -> ModelVoter | None:
    """The pool's model as a voter, from its control tally and confusion counts."""
    if pool.model_id is None:
        return None
    return ModelVoter.build(
        values=values,
        control_answers=pool.model_control_answers,
        control_right=pool.model_control_correct,
        confusion=pool.model_confusion,
    )


def recount_votes(session: Session, task_ids: Iterable[int]) -> None:
    """Rebuild the votes and confidence of dynamic-overlap tasks from their counted
    answers, each weighed as its labeler weighs now (flush only)."""
    tasks = session.exec(
        select(Task, Pool)
        .join(Pool, Pool.id == Task.pool_id)
        .where(
            Task.id.in_(set(task_ids) or {-1}),
            Task.kind == TaskKind.GENERAL,
            Pool.max_overlap.is_not(None),
        )
    ).all()
    if not tasks:
        return
    conn = session.connection()
    updates = []
    for task, pool in tasks:
        values = list(
            session.exec(
                select(AnswerOption.value)
                .join(Project, Project.id == AnswerOption.project_id)
                .where(Project.id == pool.project_id)
                .order_by(AnswerOption.position, AnswerOption.id)
            )
        )
        answers = session.exec(
            select(Answer.labeler_id, Answer.value).where(
                Answer.task_id == task.id, Answer.excluded.is_(False)
            )
        ).all()
        votes: dict[str, float] = {}
        for labeler_id, value in answers:
            weight = labeler_weight(
                conn,
                skill_id=pool.answer_weight_skill_id,
                owner_id=pool.owner_id,
                labeler_id=labeler_id,
                n=len(values),
            )
            votes[value] = votes.get(value, 0.0) + weight
        model = pool_model_voter(pool, values)
        prior = preliminary_scores(
            task.baseline_solutions, task.model_answer, model=model, values=values
        )
        updates.append(
            {
                "id": task.id,
                "votes": votes or None,
                "confidence": confidence(combined(votes, prior), values) if votes else None,
            }
        )
    conn.execute(_STORE, updates)
    for task, _ in tasks:
        session.expire(task)
