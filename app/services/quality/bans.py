"""Bans (Toloka's user restrictions): by rule or by hand, one labeler or a file of ids.

A ban clears the pools' rule histories for the labeler, and in open pools with
``exclude_banned_answers`` (on by default) the labeler's answers leave aggregation and
their tasks' slots go back to other labelers. A finished pool is left as it is: excluding
the answers there costs money, so it is the requester's explicit choice
(``banned_answers``). Lifting a ban counts the answers again where slots are free.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from app.db.models import (
    Answer,
    Assignment,
    Ban,
    BanScope,
    Pool,
    PoolStatus,
    Project,
    Role,
    RuleHistoryReset,
    User,
)
from app.db.types import utcnow
from app.errors import NotFound, ValidationFailed
from app.services.quality import banned_answers, events, overlap

UNIT_SECONDS = {"MINUTES": 60, "HOURS": 3600, "DAYS": 86400}
ALL_RULES = "*"


def normalize_scope(scope: str) -> BanScope:
    """``POOL``/``pool`` → BanScope; anything else is a validation error."""
    try:
        return BanScope(str(scope).strip().lower())
    except ValueError:
        raise ValidationFailed(
            "Scope is POOL, PROJECT or ALL_PROJECTS.", errors={"scope": "Unknown scope."}
        ) from None


def ban_expiry(now: datetime, duration: int | None, unit: str) -> datetime | None:
    """When a ban of ``duration`` ``unit`` starting now ends (None = permanent)."""
    unit = (unit or "DAYS").upper()
    if unit == "PERMANENT":
        return None
    if unit not in UNIT_SECONDS:
        raise ValidationFailed(
            "Unit is MINUTES, HOURS, DAYS or PERMANENT.", errors={"duration_unit": "Unknown unit."}
        )
    if duration is None or int(duration) < 1:
        raise ValidationFailed("Give a duration of at least 1.", errors={"duration": "At least 1."})
    return now + timedelta(seconds=int(duration) * UNIT_SECONDS[unit])


def ban_notice(ban: Ban) -> str:
    """What the labeler is told: the public reason and until when."""
    reason = ban.public_comment.strip() or "The requester restricted your access."
    until = (
        f"until {ban.expires_at.strftime('%Y-%m-%d %H:%M UTC')}"
        if ban.expires_at
        else "permanently"
    )
    return f"{reason} (access restricted {until})"


def _pools_in_scope(session: Session, ban: Ban) -> list[Pool]:
    query = select(Pool).where(Pool.owner_id == ban.requester_id)
    if ban.scope == BanScope.POOL:
        query = query.where(Pool.id == ban.pool_id)
    elif ban.scope == BanScope.PROJECT:
        query = query.where(Pool.project_id == ban.project_id)
    worked = select(Assignment.pool_id).where(Assignment.labeler_id == ban.labeler_id)
    return list(session.exec(query.where(Pool.id.in_(worked)).order_by(Pool.id)))


def reset_history(session: Session, *, pool_id: int, labeler_id: int, rule_key: str) -> None:
    """Start a rule's history for the labeler afresh from now (flush only)."""
    query = select(RuleHistoryReset).where(
        RuleHistoryReset.pool_id == pool_id,
        RuleHistoryReset.rule_key == rule_key,
        RuleHistoryReset.labeler_id == labeler_id,
    )
    row = session.exec(query).first()
    if row is None:
        try:
            with session.begin_nested():
                session.add(
                    RuleHistoryReset(pool_id=pool_id, rule_key=rule_key, labeler_id=labeler_id)
                )
                session.flush()
            return
        except IntegrityError:  # a concurrent transaction wrote it first
            row = session.exec(query).one()
    row.reset_at = utcnow()
    session.add(row)
    session.flush()


def _exclude_banned_answers(session: Session, *, pool: Pool, labeler_id: int) -> int:
    """Drop the labeler's counted answers in an open pool and give their slots back."""
    answers = session.exec(
        select(Answer)
        .join(Assignment, Assignment.id == Answer.assignment_id)
        .where(
            Answer.pool_id == pool.id,
            Answer.labeler_id == labeler_id,
            Answer.excluded.is_(False),
        )
    ).all()
    return overlap.give_back(session, list(answers))


def create_ban(
    session: Session,
    *,
    requester_id: int,
    labeler_id: int,
    scope: str,
    pool: Pool | None = None,
    project_id: int | None = None,
    expires_at: datetime | None,
    private_comment: str,
    public_comment: str = "",
    source: str = "manual",
) -> Ban:
    """Create the ban and apply its consequences (flush only)."""
    scope = normalize_scope(scope)
    if not (private_comment or "").strip():
        raise ValidationFailed(
            "Give a private reason: nobody can tell later why the labeler was banned.",
            errors={"private_comment": "Required."},
        )
    pool_id = pool.id if pool is not None and scope == BanScope.POOL else None
    if scope == BanScope.PROJECT and project_id is None and pool is not None:
        project_id = pool.project_id
    if scope != BanScope.PROJECT:
        project_id = None
    for existing in _active_bans(session, requester_id=requester_id, labeler_id=labeler_id):
        same = (existing.scope, existing.pool_id, existing.project_id) == (
            scope,
            pool_id,
            project_id,
        )
        if same and (
            existing.expires_at is None or (expires_at and existing.expires_at >= expires_at)
        ):
            return existing
    ban = Ban(
        requester_id=requester_id,
        labeler_id=labeler_id,
        scope=scope,
        pool_id=pool_id,
        project_id=project_id,
        private_comment=private_comment.strip()[:2000],
        public_comment=(public_comment or "").strip()[:2000],
        source=source[:64],
        expires_at=expires_at,
    )
    session.add(ban)
    session.flush()
    for scoped in _pools_in_scope(session, ban):
        if source == "manual":
            reset_history(session, pool_id=scoped.id, labeler_id=labeler_id, rule_key=ALL_RULES)
        finished = banned_answers.is_finished(scoped)
        if scoped.status != PoolStatus.OPEN and not finished:
            continue
        if scoped.exclude_banned_answers:
            if not finished:  # a finished pool reopens only by the requester's choice
                _exclude_banned_answers(session, pool=scoped, labeler_id=labeler_id)
        else:  # the pool's own rules (e.g. re-issue on ban) decide
            events.labeler_banned(session, pool=scoped, labeler_id=labeler_id)
    return ban


def _active_bans(session: Session, *, requester_id: int, labeler_id: int) -> list[Ban]:
    now = utcnow()
    return list(
        session.exec(
            select(Ban).where(
                Ban.requester_id == requester_id,
                Ban.labeler_id == labeler_id,
                Ban.lifted_at.is_(None),
                or_(Ban.expires_at.is_(None), Ban.expires_at > now),
            )
        )
    )


def _labeler(session: Session, labeler_id: int) -> User:
    user = session.get(User, labeler_id)
    if user is None or user.role != Role.LABELER:
        raise NotFound("No such labeler.")
    return user


def scope_target(
    session: Session,
    *,
    requester: User,
    scope: BanScope,
    pool_id: int | None,
    project_id: int | None,
) -> tuple[Pool | None, int | None]:
    pool = None
    if pool_id is not None:
        pool = overlap.owned_pool(session, requester_id=requester.id, pool_id=pool_id)
    if scope == BanScope.POOL and pool is None:
        raise ValidationFailed("A pool ban needs a pool.", errors={"pool_id": "Required."})
    if scope == BanScope.PROJECT:
        project_id = project_id or (pool.project_id if pool else None)
        project = session.get(Project, project_id) if project_id else None
        if project is None or project.owner_id != requester.id:
            raise NotFound("No such project.")
    return pool, project_id


def ban_labeler(
    session: Session,
    *,
    requester: User,
    labeler_id: int,
    scope: str,
    pool_id: int | None = None,
    project_id: int | None = None,
    duration: int | None = None,
    duration_unit: str = "DAYS",
    expires_at: datetime | None = None,
    private_comment: str,
    public_comment: str = "",
) -> Ban:
    """Ban one labeler by hand (expiry from duration+unit, or an explicit ``expires_at``)."""
    _labeler(session, labeler_id)
    normalized = normalize_scope(scope)
    pool, project_id = scope_target(
        session, requester=requester, scope=normalized, pool_id=pool_id, project_id=project_id
    )
    if expires_at is None:
        expires_at = ban_expiry(utcnow(), duration, duration_unit)
    elif expires_at <= utcnow():
        raise ValidationFailed("The end must be in the future.", errors={"will_expire": "Past."})
    ban = create_ban(
        session,
        requester_id=requester.id,
        labeler_id=labeler_id,
        scope=normalized,
        pool=pool,
        project_id=project_id,
        expires_at=expires_at,
        private_comment=private_comment,
        public_comment=public_comment,
    )
    session.commit()
    session.refresh(ban)
    return ban


def get_ban(session: Session, *, requester: User, ban_id: int) -> Ban:
    """One of the requester's bans."""
    ban = session.get(Ban, ban_id)
    if ban is None or ban.requester_id != requester.id:
        raise NotFound("No such ban.")
    return ban


def _restore_after_lift(session: Session, lifted: list[Ban]) -> None:
    """Count the labeler's excluded answers again in the lifted bans' pools that no other
    ban still covers (flush only)."""
    seen: set[int] = set()
    for ban in lifted:
        for pool in _pools_in_scope(session, ban):
            if pool.id in seen:
                continue
            seen.add(pool.id)
            if not banned_answers.is_banned(session, pool=pool, labeler_id=ban.labeler_id):
                banned_answers.restore_answers(session, pool=pool, labeler_id=ban.labeler_id)


def lift_ban(session: Session, *, requester: User, ban_id: int) -> Ban:
    """Unban: the labeler may take suites in the scope again, and their answers excluded
    because of the ban count again where their tasks still have a free slot."""
    ban = get_ban(session, requester=requester, ban_id=ban_id)
    if ban.lifted_at is None:
        ban.lifted_at = utcnow()
        session.add(ban)
        session.flush()
        _restore_after_lift(session, [ban])
        session.commit()
        session.refresh(ban)
    return ban


def unban_labeler(session: Session, *, requester: User, labeler_id: int) -> int:
    """Lift every active ban of this requester on the labeler (answers restored as in
    ``lift_ban``); returns how many."""
    bans = _active_bans(session, requester_id=requester.id, labeler_id=labeler_id)
    now = utcnow()
    for ban in bans:
        ban.lifted_at = now
        session.add(ban)
    session.flush()
    _restore_after_lift(session, bans)
    session.commit()
    return len(bans)


def list_bans(
    session: Session,
    *,
    requester: User,
    labeler_id: int | None = None,
    pool_id: int | None = None,
    project_id: int | None = None,
    scope: str | None = None,
    active_only: bool = False,
    limit: int = 200,
    after_id: int | None = None,
) -> list[Ban]:
    """The requester's bans, newest first (filters as Toloka's user-restriction search)."""
    query = select(Ban).where(Ban.requester_id == requester.id)
    if labeler_id is not None:
        query = query.where(Ban.labeler_id == labeler_id)
    if pool_id is not None:
        query = query.where(Ban.pool_id == pool_id)
    if project_id is not None:
        query = query.where(Ban.project_id == project_id)
    if scope:
        query = query.where(Ban.scope == normalize_scope(scope))
    if active_only:
        now = utcnow()
        query = query.where(
            Ban.lifted_at.is_(None), or_(Ban.expires_at.is_(None), Ban.expires_at > now)
        )
    if after_id is not None:
        query = query.where(Ban.id > after_id)
        return list(session.exec(query.order_by(Ban.id).limit(limit)))
    return list(session.exec(query.order_by(Ban.id.desc()).limit(limit)))


def is_active(ban: Ban, now: datetime | None = None) -> bool:
    """Whether the ban blocks now."""
    now = now or utcnow()
    return ban.lifted_at is None and (ban.expires_at is None or ban.expires_at > now)
