"""Cloning a project: options, instructions, rules and (optionally) its pools' settings
come along; tasks, answers and other requesters' projects never do."""

from __future__ import annotations

import pytest
from sqlmodel import select

from app.db.models import Pool, Task
from app.db.models.pool import PoolType
from app.errors import NotFound
from app.services.projects import project_clone, projects
from app.services.quality.presets import image_classification_preset
from tests.builders.pools import add_tasks, make_pool, make_project, open_pool
from tests.builders.users import make_requester


def test_a_clone_copies_settings_and_pool_drafts_but_no_tasks(session, requester):
    project = make_project(
        session, requester, name="Birds", instructions="Look **closely**.",
        options=("sparrow", "crow"),
    )  # fmt: skip
    project.quality_rules = image_classification_preset()
    session.add(project)
    session.commit()
    training = make_pool(session, requester, project, name="Practice", pool_type=PoolType.TRAINING,
                         reward_cents=0)  # fmt: skip
    pool = make_pool(
        session, requester, project, name="Batch", overlap=5, reward_cents=7,
        captcha_frequency="MEDIUM", quality_rules=image_classification_preset(),
        filter_languages=["EN"],
    )  # fmt: skip
    pool.training_pool_id = training.id
    session.add(pool)
    session.commit()
    add_tasks(session, pool, general=4)
    open_pool(session, requester, pool)

    clone = project_clone.clone_project(
        session, requester=requester, project_id=project.id, with_pools=True
    )
    new = clone.project
    assert new.id != project.id and new.name == "Birds (copy)" and new.status == "active"
    assert (new.instructions, new.question) == (project.instructions, project.question)
    assert new.quality_rules == project.quality_rules and new.task_spec == project.task_spec
    assert [(o.label, o.value, o.hotkey) for o in projects.list_options(session, project=new)] == [
        (o.label, o.value, o.hotkey) for o in projects.list_options(session, project=project)
    ]
    by_name = {p.name: p for p in clone.pools}
    assert sorted(by_name) == ["Batch", "Practice"]
    copied = by_name["Batch"]
    assert copied.status == "draft" and copied.project_id == new.id
    assert (copied.overlap, copied.reward_cents, copied.captcha_frequency) == (5, 7, "MEDIUM")
    assert copied.quality_rules == pool.quality_rules and copied.filter_languages == ["EN"]
    assert copied.training_pool_id == by_name["Practice"].id  # the clone's own training
    assert by_name["Practice"].pool_type == PoolType.TRAINING
    new_pool_ids = [p.id for p in clone.pools]
    assert session.exec(select(Task).where(Task.pool_id.in_(new_pool_ids))).all() == []
    assert session.get(Pool, pool.id).status == "open"  # the source is untouched


def test_a_clone_without_pools_and_someone_elses_project(session, requester):
    project = make_project(session, requester, name="x" * 200)
    make_pool(session, requester, project)
    clone = project_clone.clone_project(session, requester=requester, project_id=project.id)
    assert clone.pools == [] and len(clone.project.name) == 200
    assert clone.project.name.endswith(" (copy)")
    assert session.exec(select(Pool).where(Pool.project_id == clone.project.id)).all() == []
    with pytest.raises(NotFound):
        project_clone.clone_project(
            session, requester=make_requester(session), project_id=project.id
        )
