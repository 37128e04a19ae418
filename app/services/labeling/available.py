"""What a labeler may work on: available pools, access checks, bans they see."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, or_
from sqlmodel import Session, select

from app.db.models import (
    Answer,
    Assignment,
    AssignmentStatus,
    AssignmentTask,
    Ban,
    BanScope,
    Pool,
    PoolStatus,
    Project,
    Skill,
    Task,
    TaskKind,
    User,
    UserSkill,
)
from app.db.types import utcnow
from app.errors import Forbidden, LabelerBanned, NotFound
from app.services.accounts.users import TokenLabeler
from app.services.projects.tally import recent_tally
from app.services.quality import active_ban_for

# The skill behind a pool's "minimum rating" filter: ``pool.extra["rating_skill_id"]`` when
# set, otherwise the pool owner's skill with this name (written by the control-task rules).
CONTROL_SKILL_NAME = "Control accuracy"
# A labeler's page counts the suites left in a pool up to this many ("100+ suites").
SUITES_SHOWN_AT_MOST = 100


@dataclass
class PoolCard:
    """One pool as a labeler sees it (nothing private: no comments, no task kinds)."""

    pool_id: int
    pool_name: str
    project_name: str
    description: str
    instructions: str
    question: str
    reward_cents: int
    tasks_per_suite: int
    time_limit_seconds: int
    suites_remaining: int
    active_assignment_id: int | None = None

    @property
    def suites_remaining_text(self) -> str:
        """ "1 suite", "12 suites", "100+ suites" (counted up to ``SUITES_SHOWN_AT_MOST``)."""
        n = self.suites_remaining
        more = "+" if n >= SUITES_SHOWN_AT_MOST else ""
        return f"{n}{more} suite{'' if n == 1 else 's'}"


@dataclass(frozen=True, slots=True)
class PoolTerms:
    """What taking a suite needs of a pool (``suite_sql.POOL_TERMS``, same names as
    ``Pool``'s): read as one narrow row on every take instead of the whole ORM pool."""

    id: int
    project_id: int
    owner_id: int
    status: str
    overlap: int
    reward_cents: int
    general_per_suite: int
    control_per_suite: int
    training_per_suite: int
    time_limit_seconds: int
    keep_task_order: bool
    adult_content: bool
    filter_languages: list
    min_rating: int | None
    skill_filters: list
    training_pool_id: int | None
    training_level_required: int | None
    extra: dict
    fixed_suites: bool
    captcha_frequency: str | None = None
    max_overlap: int | None = None  # dynamic overlap is on when set
    model_id: int | None = None  # the pool's model (its guesses may be pre-selected)


@dataclass
class BanNotice:
    """What a banned labeler is told: where, why, until when."""

    scope_text: str
    reason: str
    until: datetime | None


def _rating_for(
    session: Session, *, labeler: User | TokenLabeler, pool: Pool | PoolTerms
) -> float | None:
    """The labeler's control-task skill for the pool's owner, or None when unset."""
    query = select(UserSkill.value).join(Skill, Skill.id == UserSkill.skill_id)
    skill_id = (pool.extra or {}).get("rating_skill_id")
    if skill_id:
        query = query.where(UserSkill.skill_id == int(skill_id))
    else:
        query = query.where(Skill.owner_id == pool.owner_id, Skill.name == CONTROL_SKILL_NAME)
    return session.exec(query.where(UserSkill.user_id == labeler.id)).first()


def _skill_values(session: Session, *, labeler: User) -> dict[int, float]:
    rows = session.exec(
        select(UserSkill.skill_id, UserSkill.value).where(UserSkill.user_id == labeler.id)
    ).all()
    return {int(skill_id): float(value) for skill_id, value in rows}


_OPS = {
    "GTE": lambda a, b: a >= b,
    "GT": lambda a, b: a > b,
    "LTE": lambda a, b: a <= b,
    "LT": lambda a, b: a < b,
    "EQ": lambda a, b: a == b,
    "NE": lambda a, b: a != b,
}


def _skill_filters_pass(pool: Pool | PoolTerms, skills: dict[int, float]) -> bool:
    """``pool.skill_filters``: AND of ``{"skill_id", "operator", "value"}``; no skill fails."""
    for item in pool.skill_filters or []:
        if not isinstance(item, dict) or "skill_id" not in item:
            continue
        value = skills.get(int(item["skill_id"]))
        operator = str(item.get("operator", "GTE")).upper()
        if item.get("value") is None:  # "has the skill" / "has not"
            if (value is None) != (operator == "NE"):
                return False
            continue
        if value is None or not _OPS.get(operator, _OPS["GTE"])(value, float(item["value"])):
            return False
    return True


def _filter_problem(labeler: User | TokenLabeler, pool: Pool | PoolTerms) -> str | None:
    """Why the pool's audience filters exclude the labeler (None when they pass)."""
    wanted = {code.upper() for code in pool.filter_languages or []}
    if wanted and not wanted & {code.upper() for code in labeler.languages or []}:
        return f"This pool is for labelers who speak {', '.join(sorted(wanted))}."
    if pool.adult_content and not labeler.adult_allowed:
        return "This pool may contain adult content; opt in on your account page to see it."
    return None


def ban_error(session: Session, *, ban: Ban, pool: Pool | PoolTerms) -> LabelerBanned:
    """The error a banned labeler gets: the public reason, the scope and the end."""
    notice = _notice(session, ban=ban, pool=pool)
    until = notice.until.strftime("%Y-%m-%d %H:%M UTC") if notice.until else "further notice"
    reason = notice.reason or "No reason was given."
    return LabelerBanned(
        f"You are banned from {notice.scope_text} until {until}. Reason: {reason}",
        payload={
            "scope": notice.scope_text,
            "reason": notice.reason,
            "until": notice.until.isoformat() if notice.until else None,
        },
    )


def check_pool_access(session: Session, *, labeler: User | TokenLabeler, pool: Pool) -> None:
    """Raise unless the labeler may take suites from this open pool right now."""
    if pool.status != PoolStatus.OPEN:
        raise NotFound("This pool is not open.")
    ban = active_ban_for(session, labeler_id=labeler.id, pool=pool)
    check_labeler_fits(session, labeler=labeler, pool=pool, ban=ban)


def check_labeler_fits(
    session: Session, *, labeler: User | TokenLabeler, pool: Pool | PoolTerms, ban: Ban | None
) -> None:
    """Raise unless the labeler passes the open pool's filters, given the ban (if any) in
    force for them there."""
    if ban is not None:
        raise ban_error(session, ban=ban, pool=pool)
    if problem := _filter_problem(labeler, pool):
        raise Forbidden(problem)
    if pool.min_rating is not None:
        rating = _rating_for(session, labeler=labeler, pool=pool)
        if rating is not None and rating < pool.min_rating:
            raise Forbidden(
                f"This pool needs a rating of at least {pool.min_rating}; yours is {rating:.0f}."
            )
    if pool.skill_filters and not _skill_filters_pass(
        pool, _skill_values(session, labeler=labeler)
    ):
        raise Forbidden("Your skills do not match this pool's requirements.")
    if pool.training_pool_id and pool.training_level_required:
        score = training_score(session, labeler_id=labeler.id, pool_id=pool.training_pool_id)
        if score is None:
            raise Forbidden("This pool needs its training first: finish the training pool.")
        if score < pool.training_level_required:
            raise Forbidden(
                f"This pool needs a training score of at least {pool.training_level_required}%; "
                f"yours is {score:.0f}%."
            )


def training_score(session: Session, *, labeler_id: int, pool_id: int) -> float | None:
    """Percent of the labeler's first answers to a training pool's tasks that were right.

    Toloka counts the first answer per training task; None when the labeler has none yet.
    """
    first = func.coalesce(Answer.first_value, Answer.value)
    total, correct = session.exec(
        select(
            func.count(Answer.id),
            func.coalesce(func.sum(case((first == Task.known_answer, 1), else_=0)), 0),
        )
        .join(Task, Task.id == Answer.task_id)
        .where(
            Answer.pool_id == pool_id,
            Answer.labeler_id == labeler_id,
            Task.kind == TaskKind.TRAINING,
        )
    ).one()
    return None if not total else 100.0 * int(correct) / int(total)


def _had_task_ids(labeler_id: int):
    return (
        select(AssignmentTask.task_id)
        .join(Assignment, Assignment.id == AssignmentTask.assignment_id)
        .where(Assignment.labeler_id == labeler_id)
    )


def _remaining_tasks(session: Session, *, labeler: User, pools: list[Pool]) -> dict[int, int]:
    """Per pool: general tasks with a free slot that this labeler has not had, counted up to
    ``SUITES_SHOWN_AT_MOST`` suites' worth (the count stops there: a labeler's page must not
    scan a pool of a million tasks to print "100+")."""
    had = _had_task_ids(labeler.id)
    found = {}
    for pool in pools:
        # The tasks with a free slot come first in ix_task_pool_kind_taken; the bound on
        # taken_count (no task has more slots than the largest overlap) ends the scan there.
        bound = max(pool.overlap, recent_tally(session, pool=pool).max_overlap)
        free = (
            select(Task.id)
            .where(
                Task.pool_id == pool.id,
                Task.kind == TaskKind.GENERAL,
                Task.taken_count < bound,
                Task.taken_count < func.coalesce(Task.overlap, pool.overlap),
                Task.id.not_in(had),
            )
            .limit(SUITES_SHOWN_AT_MOST * max(pool.general_per_suite, 1))
            .subquery()
        )
        found[pool.id] = int(session.exec(select(func.count()).select_from(free)).one())
    return found


def _unseen_other_tasks(session: Session, *, labeler: User, pools: list[Pool]) -> dict[int, int]:
    """Per pool without general tasks per suite: training/control tasks not yet had."""
    if not pools:
        return {}
    query = (
        select(Task.pool_id, func.count())
        .where(
            Task.pool_id.in_([p.id for p in pools]),
            Task.kind != TaskKind.GENERAL,
            Task.id.not_in(_had_task_ids(labeler.id)),
        )
        .group_by(Task.pool_id)
    )
    return dict(session.exec(query).all())


def list_available_pools(session: Session, *, labeler: User) -> list[PoolCard]:
    """Open pools this labeler may take now, best paid and highest priority first."""
    rows = session.exec(
        select(Pool, Project)
        .join(Project, Project.id == Pool.project_id)
        .where(Pool.status == PoolStatus.OPEN)
        .order_by(Pool.priority.desc(), Pool.reward_cents.desc(), Pool.id)
    ).all()
    allowed: list[tuple[Pool, Project]] = []
    for pool, project in rows:
        try:
            check_pool_access(session, labeler=labeler, pool=pool)
        except (Forbidden, LabelerBanned, NotFound):
            continue
        allowed.append((pool, project))
    pools = [pool for pool, _ in allowed]
    general = _remaining_tasks(
        session, labeler=labeler, pools=[p for p in pools if p.general_per_suite]
    )
    other = _unseen_other_tasks(
        session, labeler=labeler, pools=[p for p in pools if not p.general_per_suite]
    )
    active = dict(
        session.exec(
            select(Assignment.pool_id, Assignment.id).where(
                Assignment.labeler_id == labeler.id,
                Assignment.status == AssignmentStatus.ACTIVE,
                Assignment.expires_at > utcnow(),
            )
        ).all()
    )
    cards = []
    for pool, project in allowed:
        per_suite = pool.general_per_suite or (pool.control_per_suite + pool.training_per_suite)
        left = general.get(pool.id, 0) if pool.general_per_suite else other.get(pool.id, 0)
        suites = math.ceil(left / max(per_suite, 1))
        if suites == 0 and pool.id not in active:
            continue
        cards.append(
            PoolCard(
                pool_id=pool.id,
                pool_name=pool.name,
                project_name=project.name,
                description=pool.public_description or project.public_description,
                instructions=project.instructions,
                question=project.question,
                reward_cents=pool.reward_cents,
                tasks_per_suite=pool.general_per_suite
                + pool.control_per_suite
                + pool.training_per_suite,
                time_limit_seconds=pool.time_limit_seconds,
                suites_remaining=suites,
                active_assignment_id=active.get(pool.id),
            )
        )
    return cards


def _notice(session: Session, *, ban: Ban, pool: Pool | PoolTerms | None = None) -> BanNotice:
    if ban.scope == BanScope.ALL_PROJECTS:
        owner = session.get(User, ban.requester_id)
        scope_text = f"all projects of {owner.name if owner else 'this requester'}"
    else:
        project_id = ban.project_id
        if project_id is None and ban.pool_id is not None:
            banned_pool = pool if pool and pool.id == ban.pool_id else None
            banned_pool = banned_pool or session.get(Pool, ban.pool_id)
            project_id = banned_pool.project_id if banned_pool else None
        project = session.get(Project, project_id) if project_id else None
        name = f"project “{project.name}”" if project else "this project"
        scope_text = name if ban.scope == BanScope.PROJECT else f"a pool of {name}"
    return BanNotice(scope_text=scope_text, reason=ban.public_comment, until=ban.expires_at)


def list_ban_notices(session: Session, *, labeler: User) -> list[BanNotice]:
    """The labeler's bans in force now, as they may see them."""
    now = utcnow()
    bans = session.exec(
        select(Ban)
        .where(
            Ban.labeler_id == labeler.id,
            Ban.lifted_at.is_(None),
            or_(Ban.expires_at.is_(None), Ban.expires_at > now),
        )
        .order_by(Ban.id.desc())
    ).all()
    return [_notice(session, ban=ban) for ban in bans]
