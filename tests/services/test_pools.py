"""Pools: settings validation, the quality preset, state rules and what may change when."""

from __future__ import annotations

import pytest

from app.db.models import PoolStatus
from app.errors import Conflict, NotFound, ValidationFailed
from app.services.projects import pools
from app.services.quality.presets import image_classification_preset
from tests.builders.pools import add_tasks, make_pool, make_project, open_pool
from tests.builders.users import make_requester


def test_pool_defaults(session, requester):
    project = make_project(session, requester)
    pool = pools.create_pool(session, requester=requester, project_id=project.id, name="P")
    assert pool.status == PoolStatus.DRAFT
    assert (pool.overlap, pool.time_limit_seconds, pool.quality_rules) == (3, 600, [])


def test_quality_preset_is_stored(session, requester):
    project = make_project(session, requester)
    pool = pools.create_pool(
        session, requester=requester, project_id=project.id, name="P", use_quality_preset=True
    )
    assert pool.quality_rules == image_classification_preset()
    collectors = [c["collector_config"]["type"] for c in pool.quality_rules]
    assert collectors == ["ASSIGNMENT_SUBMIT_TIME", "MAJORITY_VOTE", "GOLDEN_SET"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"overlap": 0}, "overlap"),
        ({"reward_cents": 0}, "reward_cents"),
        ({"general_per_suite": 0, "control_per_suite": 0}, "general_per_suite"),
        ({"time_limit_seconds": 5}, "time_limit_seconds"),
        ({"review_period_days": 30}, "review_period_days"),
        ({"min_rating": 150}, "min_rating"),
        ({"filter_languages": ["English"]}, "filter_languages"),
        ({"name": ""}, "name"),
    ],
)
def test_invalid_settings_are_refused(session, requester, changes, field):
    project = make_project(session, requester)
    values = {"name": "P", **changes}
    with pytest.raises(ValidationFailed) as exc:
        pools.create_pool(session, requester=requester, project_id=project.id, **values)
    assert field in exc.value.errors
    assert pools.list_pools(session, requester=requester) == []


def test_languages_are_normalised(session, requester):
    pool = make_pool(session, requester, filter_languages=["en", " de ", "EN"])
    assert pool.filter_languages == ["EN", "DE"]


def test_state_rules_draft_open_closed_archived(session, requester):
    pool = make_pool(session, requester)
    with pytest.raises(Conflict):
        pools.close_pool(session, requester=requester, pool_id=pool.id)
    with pytest.raises(Conflict, match="no tasks"):
        pools.launch_pool(session, requester=requester, pool_id=pool.id)
    add_tasks(session, pool, general=9, control=["cat"])
    open_pool(session, requester, pool)
    assert pool.status == PoolStatus.OPEN
    with pytest.raises(Conflict, match="already open"):
        pools.launch_pool(session, requester=requester, pool_id=pool.id)
    with pytest.raises(Conflict, match="Close the pool"):
        pools.archive_pool(session, requester=requester, pool_id=pool.id)
    pools.close_pool(session, requester=requester, pool_id=pool.id)
    session.refresh(pool)
    assert (pool.status, pool.close_reason) == (PoolStatus.CLOSED, "MANUAL")
    pools.launch_pool(session, requester=requester, pool_id=pool.id)  # reopen
    pools.close_pool(session, requester=requester, pool_id=pool.id)
    archived = pools.archive_pool(session, requester=requester, pool_id=pool.id)
    assert archived.status == PoolStatus.ARCHIVED
    with pytest.raises(Conflict):
        pools.launch_pool(session, requester=requester, pool_id=pool.id)
    with pytest.raises(Conflict):
        pools.update_pool(session, requester=requester, pool_id=pool.id, name="x")


def test_open_pool_allows_rules_but_not_price_or_overlap(session, requester):
    pool = make_pool(session, requester)
    add_tasks(session, pool, general=3)
    open_pool(session, requester, pool)
    updated = pools.update_pool(
        session,
        requester=requester,
        pool_id=pool.id,
        use_quality_preset=True,
        time_limit_seconds=300,
        name="Renamed",
    )
    assert updated.quality_rules and updated.time_limit_seconds == 300
    for change in ({"overlap": 5}, {"reward_cents": 10}, {"general_per_suite": 4}):
        with pytest.raises(Conflict, match="Close the pool"):
            pools.update_pool(session, requester=requester, pool_id=pool.id, **change)
    # Sending the unchanged value is fine (API PUT echoes everything back).
    pools.update_pool(session, requester=requester, pool_id=pool.id, overlap=pool.overlap)


def test_another_requesters_pool_is_not_found(session, requester):
    pool = make_pool(session, requester)
    other = make_requester(session)
    with pytest.raises(NotFound):
        pools.get_pool(session, requester=other, pool_id=pool.id)
    with pytest.raises(NotFound):
        pools.launch_pool(session, requester=other, pool_id=pool.id)
    with pytest.raises(NotFound):
        pools.create_pool(session, requester=other, project_id=pool.project_id, name="x")
    assert pools.list_pools(session, requester=other) == []


def test_list_pools_filters_and_pages(session, requester):
    project = make_project(session, requester)
    first = make_pool(session, requester, project)
    second = make_pool(session, requester, project)
    make_pool(session, requester)
    assert [
        p.id for p in pools.list_pools(session, requester=requester, project_id=project.id)
    ] == [
        first.id,
        second.id,
    ]
    page = pools.list_pools(session, requester=requester, id_gt=first.id, limit=1)
    assert [p.id for p in page] == [second.id]
