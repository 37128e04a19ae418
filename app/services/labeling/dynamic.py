"""Dynamic overlap (Toloka's ``dynamic_overlap_config``, type BASIC): after each submit, a
general task whose answers leave its aggregated confidence below the pool's
``min_confidence`` gets one more slot, up to ``max_overlap``.

The confidence is Toloka's aggregation by skill, kept incrementally: a voter right with
probability ``q`` on ``K`` options adds ``log((K - 1) q / (1 - q))`` to the score of the
value it chose, and the confidence is the largest of ``softmax(scores)`` (uniform prior;
this equals ``P(z) = Π q_i or (1 - q_i) / (K - 1)`` normalised). ``q`` of a labeler is
``(0.5 + right) / (1 + answered)`` over their control tasks in the requester's pools, or
the value / 100 of ``answer_weight_skill_id`` when the pool names a skill. Preliminary
answers add their weight the same way: a task's ``baseline_solutions`` as one-coin voters,
the pool's model by its confusion matrix (``aggregation.incremental.ModelVoter``); a voter
no better than chance weighs nothing, so a model wrong on every control task cannot close
a task.

Decided inside the submit transaction, on task rows the submit has locked already (in id
order, as every counter change is), so two submits never both add a slot nor lose one:
a slot is added only when every slot of the task has been answered (``submitted_count``
equals the overlap, so no suite is still out on it), which also bounds the answers by
``max_overlap``. A task that is confident, or at ``max_overlap``, is done and closes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import JSON, Float, Integer, bindparam, text

from aggregation.incremental import (
    ModelVoter,
    combined,
    confidence,
    overlap_after,
    preliminary_scores,
)
from app.db.models import TaskKind
from app.db.raw import pick, rows
from app.services.quality.answer_weights import labeler_weight

_VOTES = "SELECT id, votes, baseline_solutions, model_answer FROM task WHERE id "
_TASK_VOTES = (  # (SQLite, PostgreSQL)
    text(_VOTES + "IN :ids ORDER BY id")
    .bindparams(bindparam("ids", expanding=True))
    .columns(id=Integer, votes=JSON, baseline_solutions=JSON),
    text(_VOTES + "= ANY(CAST(:ids AS integer[])) ORDER BY id"),
)
_SETTLE = text(
    "UPDATE task SET votes = :votes, confidence = :confidence, overlap = :overlap WHERE id = :id"
).bindparams(bindparam("votes", type_=JSON), bindparam("confidence", type_=Float))


@dataclass(frozen=True, slots=True)
class DynamicTerms:
    """A pool's dynamic overlap settings, as the submit reads them."""

    max_overlap: int
    min_confidence: float
    answer_weight_skill_id: int | None = None
    model_id: int | None = None
    model_control_answers: int = 0
    model_control_correct: int = 0
    model_confusion: dict | None = None


def model_voter(terms: DynamicTerms | None, values: list[str]) -> ModelVoter | None:
    """The pool model as a voter (None: no model, or none measured on control tasks)."""
    if terms is None or terms.model_id is None:
        return None
    return ModelVoter.build(
        values=values,
        control_answers=terms.model_control_answers,
        control_right=terms.model_control_correct,
        confusion=terms.model_confusion,
    )


def settle_tasks(
    conn,
    *,
    terms: DynamicTerms,
    pool_overlap: int,
    owner_id: int,
    labeler_id: int,
    given: Mapping[int, str],
    bumped: Iterable[tuple],
    values: list[str],
) -> list[tuple]:
    """Add the labeler's answers to their tasks' votes and give a slot to each task that is
    fully answered yet below ``min_confidence`` (flush only; the task rows are locked by
    the caller). Takes and returns (id, kind, submitted count, overlap) per task."""
    bumped = list(bumped)
    general = [tid for tid, kind, *_ in bumped if kind == TaskKind.GENERAL and tid in given]
    if not general:
        return bumped
    n = len(values)
    weight = labeler_weight(
        conn,
        skill_id=terms.answer_weight_skill_id,
        owner_id=owner_id,
        labeler_id=labeler_id,
        n=n,
    )
    model = model_voter(terms, values)
    pg = conn.dialect.name == "postgresql"
    stored = {row[0]: row[1:] for row in rows(conn, pick(_TASK_VOTES, pg), {"ids": general})}
    settled: list[tuple] = []
    updates: list[dict] = []
    for tid, kind, submitted, overlap in bumped:
        if tid not in stored:
            settled.append((tid, kind, submitted, overlap))
            continue
        votes, baseline, model_answer = stored[tid]
        votes = dict(votes or {})
        value = given[tid]
        votes[value] = votes.get(value, 0.0) + weight
        prior = preliminary_scores(baseline, model_answer, model=model, values=values)
        conf = confidence(combined(votes, prior), values)
        current = overlap_after(
            submitted=submitted,
            overlap=overlap or pool_overlap,
            confidence=conf,
            min_confidence=terms.min_confidence,
            max_overlap=terms.max_overlap,
        )
        updates.append({"id": tid, "votes": votes, "confidence": conf, "overlap": current})
        settled.append((tid, kind, submitted, current))
    conn.execute(_SETTLE, updates)
    return settled
