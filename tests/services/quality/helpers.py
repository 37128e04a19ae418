"""Scripted labelers: store a submitted suite the way the assignment engine's submit does.

``submit_suite`` inserts the Assignment, its AssignmentTask and Answer rows, takes the
tasks' slots, pays (auto-accept pools), and calls ``apply_rules_after_submit`` inside the
same transaction, then commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sqlmodel import Session, select

from app.db.engine import session_scope
from app.db.models import (
    Answer,
    Assignment,
    AssignmentStatus,
    AssignmentTask,
    Ban,
    LedgerEntry,
    Pool,
    Task,
    TaskKind,
    User,
)
from app.db.types import utcnow
from app.services.money import ledger
from app.services.quality import apply_rules_after_skip, apply_rules_after_submit


def submit_suite(
    pool: Pool,
    labeler: User | int,
    answers: Sequence[tuple[Task, str]],
    *,
    duration: float = 60.0,
) -> int:
    """A submitted suite with these answers; returns the assignment id."""
    labeler_id = labeler if isinstance(labeler, int) else labeler.id
    with session_scope() as s:
        pool = s.get(Pool, pool.id)
        now = utcnow()
        assignment = Assignment(
            pool_id=pool.id,
            labeler_id=labeler_id,
            status=AssignmentStatus.ACCEPTED if pool.auto_accept else AssignmentStatus.SUBMITTED,
            reward_cents=pool.reward_cents,
            created_at=now - timedelta(seconds=duration),
            expires_at=now + timedelta(seconds=pool.time_limit_seconds),
            submitted_at=now,
            duration_seconds=duration,
        )
        s.add(assignment)
        s.flush()
        for position, (task, value) in enumerate(answers):
            row = s.get(Task, task.id)
            s.add(
                AssignmentTask(
                    assignment_id=assignment.id,
                    task_id=row.id,
                    position=position,
                    labeler_id=assignment.labeler_id,
                )
            )
            s.add(
                Answer(
                    assignment_id=assignment.id,
                    task_id=row.id,
                    pool_id=pool.id,
                    labeler_id=labeler_id,
                    value=value,
                    created_at=now,
                )
            )
            if row.kind == TaskKind.GENERAL:
                row.taken_count += 1
            row.submitted_count += 1
            s.add(row)
        s.flush()
        if pool.auto_accept:
            ledger.pay_suite(s, pool=pool, assignment=assignment)
        apply_rules_after_submit(s, assignment=assignment)
        s.commit()
        return assignment.id


def skip_suite(pool: Pool, labeler: User) -> int:
    """A skipped suite (no answers); runs the skip rules."""
    with session_scope() as s:
        now = utcnow()
        assignment = Assignment(
            pool_id=pool.id,
            labeler_id=labeler.id,
            status=AssignmentStatus.SKIPPED,
            created_at=now,
            expires_at=now + timedelta(minutes=10),
        )
        s.add(assignment)
        s.flush()
        apply_rules_after_skip(s, assignment=assignment)
        s.commit()
        return assignment.id


def bans_of(session: Session, labeler: User | int) -> list[Ban]:
    labeler_id = labeler if isinstance(labeler, int) else labeler.id
    session.expire_all()
    return list(session.exec(select(Ban).where(Ban.labeler_id == labeler_id).order_by(Ban.id)))


def ledger_total(session: Session) -> int:
    """The sum of every ledger entry (money is only moved, never created, except top-ups)."""
    session.expire_all()
    entries = session.exec(select(LedgerEntry)).all()
    return sum(e.amount_cents for e in entries if e.kind != "topup")


def ban_rule(collector: dict, conditions: list[tuple[str, str, float]], **params) -> dict:
    """One Toloka config whose single rule bans (PROJECT, 1 day unless overridden)."""
    action = {
        "type": "RESTRICTION_V2",
        "parameters": {
            "scope": "PROJECT",
            "duration": 1,
            "duration_unit": "DAYS",
            "private_comment": "rule ban",
            "public_comment": "You answered too carelessly.",
            **params,
        },
    }
    return rule(collector, conditions, action)


def rule(collector: dict, conditions: list[tuple[str, str, float]], action: dict) -> dict:
    return {
        "collector_config": collector,
        "rules": [
            {
                "conditions": [{"key": k, "operator": o, "value": v} for k, o, v in conditions],
                "action": action,
            }
        ],
    }
