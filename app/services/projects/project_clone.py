"""Cloning a project: the same question, answer options, instructions and rules, and
optionally an empty draft of each of its pools (trainings included); never tasks or
answers. One transaction: either the whole clone exists or none of it."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from sqlmodel import Session, select

from app.db.models import AnswerOption, Pool, PoolStatus, Project, User
from app.db.models.pool import PoolType
from app.errors import ValidationFailed
from app.services.projects.pool_clone import COPIED_SETTINGS
from app.services.projects.projects import get_project, list_options
from app.services.text import control_problem

NAME_LIMIT = 200
COPY_SUFFIX = " (copy)"


@dataclass
class ProjectClone:
    """The new project and the draft pools made from the source's pools."""

    project: Project
    pools: list[Pool] = field(default_factory=list)


def clone_name(name: str) -> str:
    """``<name> (copy)``, cut so that it fits."""
    return name[: NAME_LIMIT - len(COPY_SUFFIX)] + COPY_SUFFIX


def clone_project(
    session: Session,
    *,
    requester: User,
    project_id: int,
    with_pools: bool = False,
    name: str | None = None,
) -> ProjectClone:
    """A new active project with the source's settings; with ``with_pools`` every pool that
    is not archived comes along as an empty draft, a pool's training requirement pointing
    at the cloned training (commits once)."""
    source = get_project(session, requester=requester, project_id=project_id)
    title = (name or "").strip() or clone_name(source.name)
    if problem := control_problem(title, name=True):
        raise ValidationFailed(problem, errors={"name": problem})
    project = Project(
        owner_id=requester.id,
        name=title[:NAME_LIMIT],
        question=source.question,
        public_description=source.public_description,
        instructions=source.instructions,
        private_comment=source.private_comment,
        task_spec=copy.deepcopy(source.task_spec),
        quality_rules=copy.deepcopy(source.quality_rules),
    )
    session.add(project)
    session.flush()
    for option in list_options(session, project=source):
        session.add(
            AnswerOption(
                project_id=project.id,
                label=option.label,
                value=option.value,
                position=option.position,
                hotkey=option.hotkey,
            )
        )
    result = ProjectClone(project=project)
    if with_pools:
        sources = session.exec(
            select(Pool)
            .where(Pool.project_id == source.id, Pool.status != PoolStatus.ARCHIVED)
            .order_by(Pool.id)
        ).all()
        # trainings first, so that the pools' training requirement can point at their clones
        ordered = sorted(sources, key=lambda p: (p.pool_type != PoolType.TRAINING, p.id))
        new_ids: dict[int, int] = {}
        for old in ordered:
            clone = Pool(
                project_id=project.id,
                owner_id=requester.id,
                **{key: copy.deepcopy(getattr(old, key)) for key in COPIED_SETTINGS},
            )
            if clone.training_pool_id in new_ids:
                clone.training_pool_id = new_ids[clone.training_pool_id]
            session.add(clone)
            session.flush()
            new_ids[old.id] = clone.id
            result.pools.append(clone)
    session.commit()
    session.refresh(project)
    for pool in result.pools:
        session.refresh(pool)
    return result
