"""Draft answers of an active suite: saved as the labeler picks them, so a refresh (or
another device) finds them again. Only values among the project's options are kept."""

from __future__ import annotations

from sqlmodel import Session, select

from app.db.models import AnswerOption, AssignmentStatus, Pool, User
from app.db.types import utcnow
from app.errors import Conflict
from app.services import answer_sets
from app.services.accounts.users import TokenLabeler
from app.services.labeling.locks import lock_own

MAX_POSITIONS = 1000


def save_draft(
    session: Session, *, labeler: User | TokenLabeler, assignment_id: int, answers: dict
) -> dict[int, str]:
    """Replace the suite's draft with ``answers`` (position → option value); commits.

    Unknown positions and values that are not options are dropped; a suite that is no
    longer active (submitted, expired, skipped) → ``Conflict``, someone else's → ``NotFound``.
    """
    assignment = lock_own(session, labeler=labeler, assignment_id=assignment_id)
    if assignment.status != AssignmentStatus.ACTIVE or assignment.expires_at <= utcnow():
        session.rollback()
        raise Conflict(f"This suite is {assignment.status}: its answers can no longer change.")
    pool = session.get(Pool, assignment.pool_id)
    values = list(
        session.exec(
            select(AnswerOption.value)
            .where(AnswerOption.project_id == pool.project_id)
            .order_by(AnswerOption.position, AnswerOption.id)
        )
    )
    draft = {}
    for pos, value in list(answers.items())[:MAX_POSITIONS]:
        if not str(pos).isdigit() or int(pos) >= MAX_POSITIONS:
            continue
        if isinstance(value, list | tuple):  # several answers: the chosen values so far
            draft[str(int(pos))] = answer_sets.encode([str(v) for v in value], values)
        elif str(value) in values:
            draft[str(int(pos))] = str(value)
    assignment.draft = draft
    session.add(assignment)
    session.commit()
    return {int(pos): value for pos, value in draft.items()}
