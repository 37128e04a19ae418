"""Cloning a pool (Toloka's ``clone_pool``): an empty draft with the same settings."""

from __future__ import annotations

import copy

from sqlmodel import Session

from app.db.models import Pool, User
from app.services.projects.pools import POOL_FIELDS, create_pool, get_pool

# Settings copied besides ``POOL_FIELDS``: filters by skill and the training requirement.
_ALSO_COPIED = ("skill_filters", "training_pool_id", "training_level_required")
# Everything a clone of a pool takes over (a project's clone copies its pools with these).
COPIED_SETTINGS = tuple(sorted(POOL_FIELDS)) + _ALSO_COPIED


def clone_pool(session: Session, *, requester: User, pool_id: int) -> Pool:
    """A new draft pool in the same project with the pool's settings, rules, filters and
    training requirement, and no tasks (a training clones into a training)."""
    source = get_pool(session, requester=requester, pool_id=pool_id)
    settings = {key: copy.deepcopy(getattr(source, key)) for key in sorted(POOL_FIELDS)}
    clone = create_pool(session, requester=requester, project_id=source.project_id, **settings)
    for key in _ALSO_COPIED:
        setattr(clone, key, copy.deepcopy(getattr(source, key)))
    session.add(clone)
    session.commit()
    session.refresh(clone)
    return clone
