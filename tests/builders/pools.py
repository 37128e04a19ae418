"""Projects, pools and tasks for tests, built through the requester-console services."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from sqlmodel import Session

from app.db.models import Pool, Project, Task, TaskKind, User
from app.services.money import ledger
from app.services.projects import pools, projects, uploads
from app.services.projects.upload_formats import TaskInput

_images = itertools.count(1)
_PROJECT_ARGS = {
    "name", "question", "public_description", "instructions", "private_comment", "answer_type",
    "allow_none",
}  # fmt: skip


def _owner(session: Session, pool: Pool) -> User:
    return session.get(User, pool.owner_id)


def make_project(
    session: Session, requester: User, options: Sequence[str] = ("cat", "dog", "bird"), **fields
) -> Project:
    """A project with one answer option per value (label = value title-cased)."""
    fields.setdefault("name", "Animals")
    fields.setdefault("question", "What is in the picture?")
    extra = {key: fields.pop(key) for key in list(fields) if key not in _PROJECT_ARGS}
    project = projects.create_project(
        session,
        requester=requester,
        options=[projects.OptionInput(label=value.title(), value=value) for value in options],
        **fields,
    )
    if extra:
        for key, value in extra.items():
            setattr(project, key, value)
        session.add(project)
        session.commit()
        session.refresh(project)
    return project


def make_pool(session: Session, requester: User, project: Project | None = None, **fields) -> Pool:
    """A draft pool (overlap 3, 9 general + 1 control per suite, $0.05 unless given)."""
    project = project or make_project(session, requester)
    fields.setdefault("name", "Pool")
    fields.setdefault("overlap", 3)
    fields.setdefault("reward_cents", 5)
    fields.setdefault("general_per_suite", 9)
    fields.setdefault("control_per_suite", 1)
    extra = {key: fields.pop(key) for key in list(fields) if key not in pools.POOL_FIELDS}
    pool = pools.create_pool(session, requester=requester, project_id=project.id, **fields)
    if extra:
        for key, value in extra.items():
            setattr(pool, key, value)
        session.add(pool)
        session.commit()
        session.refresh(pool)
    return pool


def add_tasks(
    session: Session,
    pool: Pool,
    *,
    general: int = 0,
    control: Sequence[str] = (),
    training: Sequence[tuple[str, str]] = (),
) -> list[Task]:
    """Add general tasks, control tasks (one per known answer) and training tasks."""
    items = [
        TaskInput(image=f"https://img.example/{next(_images)}.png", kind=TaskKind.GENERAL)
        for _ in range(general)
    ]
    items += [
        TaskInput(
            image=f"https://img.example/{next(_images)}.png",
            known_answer=answer,
            kind=TaskKind.CONTROL,
        )
        for answer in control
    ]
    items += [
        TaskInput(
            image=f"https://img.example/{next(_images)}.png",
            known_answer=answer,
            hint=hint,
            kind=TaskKind.TRAINING,
        )
        for answer, hint in training
    ]
    return uploads.add_tasks(session, requester=_owner(session, pool), pool_id=pool.id, items=items)


def open_pool(
    session: Session, requester: User, pool: Pool, *, budget_cents: int = 100_000
) -> Pool:
    """Fund the requester, launch the pool and keep ``budget_cents`` (or the cost) reserved."""
    review = pools.review_budget(session, requester=requester, pool_id=pool.id)
    ledger.top_up(session, user=requester, amount_cents=max(budget_cents, review.to_reserve_cents))
    if review.general_tasks + review.control_tasks + review.training_tasks:
        pools.launch_pool(session, requester=requester, pool_id=pool.id)
    else:  # an empty pool cannot be launched through the console; tests may still want one
        pools._mark_open(pool)
        session.add(pool)
        session.commit()
    extra = budget_cents - ledger.get_pool_reserved(session, pool=pool)
    if extra > 0:
        ledger.reserve_for_pool(session, pool=pool, amount_cents=extra, memo="test launch")
        session.commit()
    session.refresh(pool)
    return pool
