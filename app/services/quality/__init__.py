"""Quality control: bans, rules that run after each submitted suite, skills, review.

Contract used by the labeling hot path (issue 4):
- ``active_ban_for(session, labeler_id=..., pool=...)`` → the ban that blocks the labeler
  from the pool now, or None.
- ``apply_rules_after_submit(session, assignment=...)`` runs inside the submit transaction
  (flush only, no commit), so the next suite request already sees its bans.
"""

from __future__ import annotations

from sqlmodel import Session

from app.db.models import Assignment, Ban, Pool
from app.db.raw import rows
from app.db.types import utcnow
from app.errors import LabelerBanned
from app.services.quality import engine, sql
from app.services.quality.inputs import SubmittedSuite, SubmitTerms


def active_ban_for(session: Session, *, labeler_id: int, pool: Pool) -> Ban | None:
    """The ban, if any, that keeps the labeler out of this pool right now."""
    params = {
        "labeler_id": labeler_id,
        "requester_id": pool.owner_id,
        "now": utcnow(),
        "project_id": pool.project_id,
        "pool_id": pool.id,
    }
    # this runs on every suite a labeler takes, and almost always finds nothing: the id
    # first, in one narrow statement; the row only when there is one
    found = rows(session.connection(), sql.ACTIVE_BAN_ID, params)
    return session.get(Ban, found[0][0]) if found else None


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
    assignment: Assignment | SubmittedSuite,
    suite: list[tuple] | None = None,
    control_tally: tuple[int, int] | None = None,
    pool: SubmitTerms | None = None,
) -> None:
    """Run the pool's quality rules after a submitted suite (flush only, no commit).

    Updates the labeler's control accuracy, runs the submit-time collectors for the
    submitter, and majority vote for everyone whose task this suite completed. ``suite``
    is optional: (task id, kind, overlap, submitted_count) of every task, read fresh;
    so is ``control_tally``: (control answers, right ones) of the suite, and ``pool``:
    what the submit read of the pool (a pool without rules then costs no ORM load).
    """
    engine.run_after_submit(
        session, assignment=assignment, suite=suite, control_tally=control_tally, pool=pool
    )


def apply_rules_after_skip(session: Session, *, assignment: Assignment) -> None:
    """Run the skipped-in-a-row rules after a labeler skipped a suite (flush only)."""
    engine.run_after_skip(session, assignment=assignment)


def apply_rules_after_captcha(session: Session, *, pool: Pool, labeler_id: int) -> None:
    """Run the pool's captcha rules after the labeler answered a captcha (flush only)."""
    engine.run_captcha_rules(session, pool=pool, labeler_id=labeler_id)
