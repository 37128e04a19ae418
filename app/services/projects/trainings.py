"""Training pools: a pool of training tasks a labeler passes before a pool that requires it."""

from __future__ import annotations

from sqlmodel import Session

from app.db.models import Pool, User
from app.db.models.pool import PoolType
from app.errors import ValidationFailed


def is_training(pool: Pool) -> bool:
    """Whether the pool is a training pool."""
    return pool.pool_type == PoolType.TRAINING


def apply_training_requirement(
    session: Session, *, requester: User, pool: Pool, requirement: dict | None
) -> Pool:
    """Set which training a pool requires, and the skill level it must be passed with
    (Toloka's ``quality_control.training_requirement``); commits."""
    if requirement is None:
        return pool
    raw_id = str((requirement or {}).get("training_pool_id") or "").strip()
    training_id = None
    if raw_id:
        training = session.get(Pool, int(raw_id)) if raw_id.isdigit() else None
        if training is None or training.owner_id != requester.id or not is_training(training):
            raise ValidationFailed(
                "training_pool_id is not one of your trainings.",
                errors={"quality_control.training_requirement.training_pool_id": "DOES_NOT_EXIST"},
            )
        training_id = training.id
    level = requirement.get("training_passing_skill_value")
    pool.training_pool_id = training_id
    pool.training_level_required = int(level) if training_id and level is not None else None
    session.add(pool)
    session.commit()
    session.refresh(pool)
    return pool
