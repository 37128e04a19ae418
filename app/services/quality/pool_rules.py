"""Reading and saving a pool's quality rules (validated, Toloka JSON in and out)."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from app.db.models import Pool, Skill, User
from app.errors import ValidationFailed
from app.services.quality import overlap
from app.services.quality.rules import (
    QualityConfig,
    check_captcha_rules,
    dump_configs,
    load_configs,
    parse_captcha_frequency,
    parse_configs,
)

_KEEP = object()


def get_pool_rules(session: Session, *, requester: User, pool_id: int) -> tuple[Pool, list[dict]]:
    """The pool and its rules as Toloka ``quality_control.configs``."""
    pool = overlap.owned_pool(session, requester_id=requester.id, pool_id=pool_id)
    return pool, dump_configs(load_configs(pool.quality_rules))


def validate_rules(session: Session, *, requester: User, raw: Any) -> list[QualityConfig]:
    """Parse configs and check that every skill they set is the requester's."""
    configs = parse_configs(raw)
    own = set(session.exec(select(Skill.id).where(Skill.owner_id == requester.id)).all())
    errors = {}
    for ci, config in enumerate(configs):
        for ri, rule in enumerate(config.rules):
            skill_id = rule.action.parameters.get("skill_id")
            if skill_id is not None and int(skill_id) not in own:
                errors[f"configs.{ci}.rules.{ri}.skill_id"] = "Choose one of your skills."
    if errors:
        raise ValidationFailed("Check the quality rules: unknown skill.", errors=errors)
    return configs


def save_pool_rules(
    session: Session,
    *,
    requester: User,
    pool_id: int,
    raw: Any,
    exclude_banned_answers: bool | None = None,
    captcha_frequency: Any = _KEEP,
) -> list[dict]:
    """Replace the pool's rules (allowed on open pools too), and its captcha frequency when
    given; returns the rules as Toloka JSON."""
    pool = overlap.owned_pool(session, requester_id=requester.id, pool_id=pool_id)
    configs = validate_rules(session, requester=requester, raw=raw)
    frequency = (
        pool.captcha_frequency
        if captcha_frequency is _KEEP
        else parse_captcha_frequency(captcha_frequency)
    )
    rules = dump_configs(configs)
    check_captcha_rules(rules, frequency)
    pool.quality_rules = rules
    pool.captcha_frequency = frequency
    if exclude_banned_answers is not None:
        pool.exclude_banned_answers = exclude_banned_answers
    session.add(pool)
    session.commit()
    session.refresh(pool)
    return list(pool.quality_rules)
