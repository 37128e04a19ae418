"""Skills: a requester's numeric (0-100) labeler skills, set by rules or by hand.

Pools filter on them (``Pool.skill_filters``: ``[{skill_id, operator, value}]``) and the
pool's ``min_rating`` compares against the "Control accuracy" skill, which every
submitted suite with control tasks updates.
"""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from app.db.models import Pool, Role, Skill, User, UserSkill
from app.db.raw import rows
from app.db.types import utcnow
from app.errors import Conflict, NotFound, ValidationFailed
from app.services.quality import sql
from app.services.quality.rules import OPERATOR_FUNCS, Operator

CONTROL_ACCURACY = "Control accuracy"


def _get_or_create_skill(
    session: Session, *, owner_id: int, name: str, description: str = ""
) -> Skill:
    skill = session.exec(
        select(Skill).where(Skill.owner_id == owner_id, Skill.name == name)
    ).first()
    if skill is not None:
        return skill
    try:
        with session.begin_nested():
            skill = Skill(owner_id=owner_id, name=name, description=description)
            session.add(skill)
            session.flush()
    except IntegrityError:
        skill = session.exec(
            select(Skill).where(Skill.owner_id == owner_id, Skill.name == name)
        ).one()
    return skill


def control_accuracy_skill(session: Session, *, requester_id: int) -> Skill:
    """The requester's "Control accuracy" skill, created on first use (flush only)."""
    return _get_or_create_skill(
        session,
        owner_id=requester_id,
        name=CONTROL_ACCURACY,
        description="Percent of correct answers on control tasks in all of your pools.",
    )


def set_skill_value(session: Session, *, skill_id: int, user_id: int, value: float) -> UserSkill:
    """Upsert a labeler's skill value, clamped to 0-100 (flush only)."""
    value = round(min(100.0, max(0.0, float(value))), 2)
    row = session.exec(
        select(UserSkill).where(UserSkill.skill_id == skill_id, UserSkill.user_id == user_id)
    ).first()
    if row is None:
        try:
            with session.begin_nested():
                row = UserSkill(skill_id=skill_id, user_id=user_id, value=value)
                session.add(row)
                session.flush()
            return row
        except IntegrityError:
            row = session.exec(
                select(UserSkill).where(
                    UserSkill.skill_id == skill_id, UserSkill.user_id == user_id
                )
            ).one()
    row.value = value
    row.updated_at = utcnow()
    session.add(row)
    session.flush()
    return row


def update_control_accuracy(
    session: Session,
    *,
    requester_id: int,
    labeler_id: int,
    assignment_id: int,
    tally: tuple[int, int] | None = None,
) -> None:
    """Add a submitted suite's control answers to the labeler's control accuracy over the
    requester's pools (flush only). ``tally``: the suite's (control answers, right ones),
    when the caller knows them."""
    conn = session.connection()
    params = {"labeler_id": labeler_id, "requester_id": requester_id}
    if tally is None:
        [tally] = rows(conn, sql.SUITE_CONTROLS, {"assignment_id": assignment_id})
    answers, correct = (int(n) for n in tally)
    if not answers:
        return
    updated = rows(  # the usual case: skill and value exist, one statement
        conn,
        sql.ADD_CONTROL_TALLY,
        {
            **params,
            "now": utcnow(),
            "name": CONTROL_ACCURACY,
            "answers": answers,
            "correct": correct,
        },
    )
    if updated:
        return
    total, right = (int(n) for n in conn.execute(sql.CONTROL_TOTALS, params).one())
    if not total:
        return
    skill = control_accuracy_skill(session, requester_id=requester_id)
    row = set_skill_value(
        session, skill_id=skill.id, user_id=labeler_id, value=100.0 * right / total
    )
    row.control_answers, row.control_correct = total, right
    session.add(row)
    session.flush()


def get_skill(session: Session, *, requester: User, skill_id: int) -> Skill:
    """One of the requester's skills."""
    skill = session.get(Skill, skill_id)
    if skill is None or skill.owner_id != requester.id:
        raise NotFound("No such skill.")
    return skill


def list_skills(session: Session, *, requester: User) -> list[Skill]:
    """The requester's skills by name."""
    return list(
        session.exec(select(Skill).where(Skill.owner_id == requester.id).order_by(Skill.name))
    )


def create_skill(session: Session, *, requester: User, name: str, description: str = "") -> Skill:
    """A new skill; names are unique per requester."""
    name = (name or "").strip()
    if not name or len(name) > 120:
        raise ValidationFailed("Name the skill (1-120 characters).", errors={"name": "Required."})
    exists = session.exec(
        select(Skill).where(Skill.owner_id == requester.id, Skill.name == name)
    ).first()
    if exists is not None:
        raise Conflict(f"You already have a skill named {name!r}.")
    skill = Skill(owner_id=requester.id, name=name, description=(description or "")[:1000])
    session.add(skill)
    session.commit()
    session.refresh(skill)
    return skill


def set_user_skill(
    session: Session, *, requester: User, skill_id: int, labeler_id: int, value: float
) -> UserSkill:
    """Set a labeler's value of one of the requester's skills by hand."""
    get_skill(session, requester=requester, skill_id=skill_id)
    labeler = session.get(User, labeler_id)
    if labeler is None or labeler.role != Role.LABELER:
        raise NotFound("No such labeler.")
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1.0
    if not 0 <= number <= 100:
        raise ValidationFailed("A skill is between 0 and 100.", errors={"value": "0-100."})
    row = set_skill_value(session, skill_id=skill_id, user_id=labeler_id, value=number)
    session.commit()
    session.refresh(row)
    return row


def list_user_skills(
    session: Session,
    *,
    requester: User,
    skill_id: int | None = None,
    labeler_id: int | None = None,
    limit: int = 500,
) -> list[UserSkill]:
    """Labelers' values of the requester's skills."""
    query = (
        select(UserSkill)
        .join(Skill, Skill.id == UserSkill.skill_id)
        .where(Skill.owner_id == requester.id)
    )
    if skill_id is not None:
        query = query.where(UserSkill.skill_id == skill_id)
    if labeler_id is not None:
        query = query.where(UserSkill.user_id == labeler_id)
    return list(session.exec(query.order_by(UserSkill.id).limit(limit)))


def delete_user_skill(session: Session, *, requester: User, user_skill_id: int) -> None:
    """Remove a labeler's value of a skill."""
    row = session.get(UserSkill, user_skill_id)
    if row is None:
        raise NotFound("No such user skill.")
    get_skill(session, requester=requester, skill_id=row.skill_id)
    session.delete(row)
    session.commit()


def labeler_skill_values(session: Session, *, labeler_id: int, owner_id: int) -> dict[int, float]:
    """Skill id → value for the labeler, over one requester's skills."""
    rows = session.exec(
        select(UserSkill.skill_id, UserSkill.value)
        .join(Skill, Skill.id == UserSkill.skill_id)
        .where(UserSkill.user_id == labeler_id, Skill.owner_id == owner_id)
    ).all()
    return dict(rows)


def labeler_passes_skill_filters(session: Session, labeler_id: int, pool: Pool) -> bool:
    """Whether the labeler passes the pool's skill filters and minimum rating.

    A filter ``{skill_id, operator, value}`` needs the skill to be set (``value: null``
    with ``EQ`` means "has no value"). ``min_rating`` compares the Control accuracy skill;
    a labeler without one yet passes, so newcomers can earn it.
    """
    filters = list(pool.skill_filters or [])
    if not filters and not pool.min_rating:
        return True
    values = labeler_skill_values(session, labeler_id=labeler_id, owner_id=pool.owner_id)
    for item in filters:
        try:
            skill_id = int(item.get("skill_id") or item.get("key"))
            operator = Operator(str(item.get("operator", "GTE")).upper())
        except (TypeError, ValueError, AttributeError):
            continue
        expected = item.get("value")
        actual = values.get(skill_id)
        if expected is None:
            has = actual is not None
            if (operator == Operator.EQ and has) or (operator == Operator.NE and not has):
                return False
            continue
        if actual is None or not OPERATOR_FUNCS[operator](actual, float(expected)):
            return False
    if pool.min_rating:
        skill = session.exec(
            select(Skill).where(Skill.owner_id == pool.owner_id, Skill.name == CONTROL_ACCURACY)
        ).first()
        actual = values.get(skill.id) if skill else None
        if actual is not None and actual < pool.min_rating:
            return False
    return True
