"""The console's lists of projects, pools and tasks: searched, sorted and paged in SQL.

Each list is a ``ListSpec`` (see ``app.services.listing``); reads take the requester, so
someone else's project or pool is ``NotFound`` as everywhere else.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from sqlalchemy import func
from sqlmodel import Session, col, select

from app.db.models import Pool, Project, Task, TaskKind, User
from app.services.listing import ListParams, ListSpec, Page, paginate
from app.services.projects.pools import get_pool
from app.services.projects.projects import get_project

PROJECT_LIST = ListSpec(
    sorts={
        "created": col(Project.id),
        "name": func.lower(col(Project.name)),
        "status": col(Project.status),
    },
    default_sort="created",
    default_dir="desc",
    search=(col(Project.name), col(Project.public_description)),
    tiebreak=(col(Project.id),),
)
"""A requester's projects, newest first; searched in name and description."""

POOL_LIST = ListSpec(
    sorts={
        "created": col(Pool.id),
        "name": func.lower(col(Pool.name)),
        "status": col(Pool.status),
        "price": col(Pool.reward_cents),
        "overlap": col(Pool.overlap),
    },
    default_sort="created",
    default_dir="desc",
    first_dirs={"price": "desc", "overlap": "desc"},
    search=(col(Pool.name),),
    tiebreak=(col(Pool.id),),
)
"""A project's pools, newest first; searched in the name."""

TASK_LIST = ListSpec(
    sorts={
        "position": (col(Task.position), col(Task.id)),
        "kind": col(Task.kind),
        "answer": col(Task.known_answer),
    },
    default_sort="position",
    nulls_last=("answer",),
    search=(col(Task.image), col(Task.known_answer)),
    tiebreak=(col(Task.id),),
    per_page=48,
    per_page_choices=(24, 48, 96),
)
"""A pool's tasks in upload order; searched in the image (URL or name) and known answer."""


def page_projects(session: Session, *, requester: User, params: ListParams) -> Page:
    """One page of the requester's projects."""
    query = select(Project).where(Project.owner_id == requester.id)
    return paginate(session, query, spec=PROJECT_LIST, params=params)


def count_pools_by_status(
    session: Session, *, requester: User, project_ids: Iterable[int]
) -> dict[int, Counter]:
    """``{project id: Counter(pool status -> pools)}`` for the given projects (one query)."""
    ids = list(project_ids)
    counts: dict[int, Counter] = {}
    if not ids:
        return counts
    rows = session.exec(
        select(Pool.project_id, Pool.status, func.count(col(Pool.id)))
        .where(Pool.owner_id == requester.id, col(Pool.project_id).in_(ids))
        .group_by(Pool.project_id, Pool.status)
    ).all()
    for project_id, status, count in rows:
        counts.setdefault(project_id, Counter())[status] = count
    return counts


def page_pools(session: Session, *, requester: User, project_id: int, params: ListParams) -> Page:
    """One page of a project's pools (someone else's project: ``NotFound``)."""
    project = get_project(session, requester=requester, project_id=project_id)
    query = select(Pool).where(Pool.owner_id == requester.id, Pool.project_id == project.id)
    return paginate(session, query, spec=POOL_LIST, params=params)


def page_tasks(
    session: Session, *, requester: User, pool_id: int, kind: str | None, params: ListParams
) -> Page:
    """One page of a pool's tasks, of one kind when given (someone else's pool: ``NotFound``)."""
    pool = get_pool(session, requester=requester, pool_id=pool_id)
    query = select(Task).where(Task.pool_id == pool.id)
    if kind in {k.value for k in TaskKind}:
        query = query.where(Task.kind == kind)
    return paginate(session, query, spec=TASK_LIST, params=params)
