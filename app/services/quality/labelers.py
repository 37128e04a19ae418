"""One labeler as a requester sees them in a pool: history, figures, bans, skills, bonuses."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlmodel import Session, select

from app.db.models import Assignment, Ban, Pool, Role, User, UserSkill
from app.errors import NotFound
from app.services.money import bonuses
from app.services.quality import bans, collectors, overlap, skills


@dataclass
class LabelerProfile:
    """What the per-labeler page shows."""

    pool: Pool
    labeler: User
    assignments: list[Assignment]
    figures: dict
    bans: list[Ban]
    active_ban: Ban | None
    skill_values: list[tuple[object, UserSkill | None]]
    bonuses: list = field(default_factory=list)


def get_labeler_profile(
    session: Session, *, requester: User, pool_id: int, labeler_id: int
) -> LabelerProfile:
    """The labeler's suites in the pool and their quality figures (whole pool history)."""
    pool = overlap.owned_pool(session, requester_id=requester.id, pool_id=pool_id)
    labeler = session.get(User, labeler_id)
    if labeler is None or labeler.role != Role.LABELER:
        raise NotFound("No such labeler.")
    assignments = list(
        session.exec(
            select(Assignment)
            .where(Assignment.pool_id == pool.id, Assignment.labeler_id == labeler_id)
            .order_by(Assignment.id.desc())
            .limit(200)
        )
    )
    done = [a for a in assignments if a.duration_seconds is not None]
    common = {"pool": pool, "labeler_id": labeler_id, "since": None}
    figures = {
        "suites": len(done),
        "average_seconds": sum(a.duration_seconds for a in done) / len(done) if done else None,
        **collectors.golden_set(session, **common, history=None),
        "majority": collectors.majority_vote(
            session, **common, history=None, threshold=max(1, pool.overlap // 2 + 1)
        ),
        **collectors.acceptance_rate(session, **common, history=None),
    }
    all_bans = bans.list_bans(session, requester=requester, labeler_id=labeler_id)
    from app.services.quality import active_ban_for

    values = {
        row.skill_id: row
        for row in skills.list_user_skills(session, requester=requester, labeler_id=labeler_id)
    }
    return LabelerProfile(
        pool=pool,
        labeler=labeler,
        assignments=assignments,
        figures=figures,
        bans=all_bans,
        active_ban=active_ban_for(session, labeler_id=labeler_id, pool=pool),
        skill_values=[
            (s, values.get(s.id)) for s in skills.list_skills(session, requester=requester)
        ],
        bonuses=bonuses.list_bonuses(session, requester=requester, labeler_id=labeler_id),
    )
