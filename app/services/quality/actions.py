"""Rule actions: ban, set skill, reject/accept all, change overlap (flush only)."""

from __future__ import annotations

from sqlmodel import Session, select

from app.db.models import Answer, Assignment, AssignmentStatus, Pool, Task, TaskKind
from app.db.types import utcnow
from app.services.quality import bans, overlap, review, skills
from app.services.quality.rules import Action

# Actions after which the rule's history restarts (a skill tracks continuously).
RESETTING = {
    "RESTRICTION_V2",
    "REJECT_ALL_ASSIGNMENTS",
    "APPROVE_ALL_ASSIGNMENTS",
    "CHANGE_OVERLAP",
}


def _submitted(session: Session, *, pool: Pool, labeler_id: int) -> list[Assignment]:
    return list(
        session.exec(
            select(Assignment)
            .where(
                Assignment.pool_id == pool.id,
                Assignment.labeler_id == labeler_id,
                Assignment.status == AssignmentStatus.SUBMITTED,
            )
            .order_by(Assignment.id)
        )
    )


def _labeler_task_ids(session: Session, *, pool: Pool, labeler_id: int) -> list[int]:
    return list(
        session.exec(
            select(Answer.task_id)
            .join(Task, Task.id == Answer.task_id)
            .where(
                Answer.pool_id == pool.id,
                Answer.labeler_id == labeler_id,
                Task.kind == TaskKind.GENERAL,
            )
            .distinct()
        )
    )


def change_overlap(session: Session, *, pool: Pool, labeler_id: int, params: dict) -> int:
    """Raise the overlap of the labeler's tasks by ``delta``; reopen when asked."""
    task_ids = _labeler_task_ids(session, pool=pool, labeler_id=labeler_id)
    delta = int(params.get("delta") or 1)
    changed = overlap.raise_overlap(session, pool=pool, task_ids=task_ids, delta=delta)
    if changed and params.get("open_pool"):
        overlap.reopen_if_completed(session, pool=pool, slots=changed * delta, force=True)
    return changed


def apply_action(
    session: Session,
    *,
    pool: Pool,
    labeler_id: int,
    action: Action,
    figures: dict,
    rule_key: str,
    collector: str,
) -> str:
    """Carry out one rule action for one labeler; returns a short description."""
    params = action.parameters
    kind = action.type.value
    result = kind
    if kind == "RESTRICTION_V2":
        ban = bans.create_ban(
            session,
            requester_id=pool.owner_id,
            labeler_id=labeler_id,
            scope=params["scope"],
            pool=pool,
            project_id=pool.project_id,
            expires_at=bans.ban_expiry(utcnow(), params.get("duration"), params["duration_unit"]),
            private_comment=str(params.get("private_comment") or f"Rule {collector}"),
            public_comment=str(params.get("public_comment") or ""),
            source=f"rule:{collector}",
        )
        result = f"banned (ban {ban.id})"
    elif kind == "SET_SKILL":
        skills.set_skill_value(
            session,
            skill_id=int(params["skill_id"]),
            user_id=labeler_id,
            value=params["skill_value"],
        )
    elif kind == "SET_SKILL_FROM_OUTPUT_FIELD":
        value = figures.get(params.get("from_field", "correct_answers_rate"))
        if value is None:
            return "skipped"
        skills.set_skill_value(
            session, skill_id=int(params["skill_id"]), user_id=labeler_id, value=value
        )
    elif kind == "REJECT_ALL_ASSIGNMENTS":
        comment = str(params.get("public_comment") or "Rejected by a quality rule.")
        for assignment in _submitted(session, pool=pool, labeler_id=labeler_id):
            review.reject_suite(session, pool=pool, assignment=assignment, comment=comment)
    elif kind == "APPROVE_ALL_ASSIGNMENTS":
        for assignment in _submitted(session, pool=pool, labeler_id=labeler_id):
            review.accept_suite(session, pool=pool, assignment=assignment)
    elif kind == "CHANGE_OVERLAP":
        change_overlap(session, pool=pool, labeler_id=labeler_id, params=params)
    if kind in RESETTING:
        bans.reset_history(session, pool_id=pool.id, labeler_id=labeler_id, rule_key=rule_key)
    return result
