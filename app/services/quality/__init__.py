"""Quality control: bans, rules that run after each submitted suite, skills, review.

Contract used by the labeling hot path (issue 4):
- ``active_ban_for(session, labeler_id=..., pool=...)`` → the ban that blocks the labeler
  from the pool now, or None.
- ``apply_rules_after_submit(session, assignment=...)`` runs inside the submit transaction
  (flush only, no commit), so the next suite request already sees its bans.
"""

from __future__ import annotations

from sqlalchemy import bindparam, or_
from sqlmodel import Session, select

from app.db.models import Assignment, Ban, BanScope, Pool
from app.db.types import UTCDateTime, utcnow
from app.errors import LabelerBanned

# built once: this runs on every suite a labeler takes
_ACTIVE_BAN = (
    select(Ban)
    .where(
        Ban.labeler_id == bindparam("labeler_id"),
        Ban.requester_id == bindparam("requester_id"),
        Ban.lifted_at.is_(None),
        or_(Ban.expires_at.is_(None), Ban.expires_at > bindparam("now", type_=UTCDateTime)),
        or_(
            Ban.scope == BanScope.ALL_PROJECTS,
            (Ban.scope == BanScope.PROJECT) & (Ban.project_id == bindparam("project_id")),
            (Ban.scope == BanScope.POOL) & (Ban.pool_id == bindparam("pool_id")),
        ),
    )
    .order_by(Ban.expires_at.is_(None).desc(), Ban.expires_at.desc())
)


def active_ban_for(session: Session, *, labeler_id: int, pool: Pool) -> Ban | None:
    """The ban, if any, that keeps the labeler out of this pool right now."""
    params = {
        "labeler_id": labeler_id,
        "requester_id": pool.owner_id,
        "now": utcnow(),
        "project_id": pool.project_id,
        "pool_id": pool.id,
    }
    return session.exec(_ACTIVE_BAN, params=params).first()


def ensure_not_banned(session: Session, *, labeler_id: int, pool: Pool) -> None:
    """Raise LabelerBanned (message = the public reason and until when) if banned here."""
    ban = active_ban_for(session, labeler_id=labeler_id, pool=pool)
    if ban is not None:
        from app.services.quality.bans import ban_notice

        raise LabelerBanned(
            ban_notice(ban),
            payload={
                "scope": ban.scope.upper(),
                "public_comment": ban.public_comment,
                "expires_at": ban.expires_at.isoformat() if ban.expires_at else None,
            },
        )


def apply_rules_after_submit(
    session: Session,
    *,
    assignment: Assignment,
    suite: list[tuple] | None = None,
    control_tally: tuple[int, int] | None = None,
) -> None:
    """Run the pool's quality rules after a submitted suite (flush only, no commit).

    Updates the labeler's control accuracy, runs the submit-time collectors for the
    submitter, and majority vote for everyone whose task this suite completed. ``suite``
    is optional: (task id, kind, overlap, submitted_count) of every task, read fresh;
    so is ``control_tally``: (control answers, right ones) of the suite.
    """
    from app.services.quality.engine import run_after_submit

    run_after_submit(session, assignment=assignment, suite=suite, control_tally=control_tally)


def apply_rules_after_skip(session: Session, *, assignment: Assignment) -> None:
    """Run the skipped-in-a-row rules after a labeler skipped a suite (flush only)."""
    from app.services.quality.engine import run_after_skip

    run_after_skip(session, assignment=assignment)
