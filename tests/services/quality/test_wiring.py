"""The rules engine is wired into the real labeling path and the pool settings."""

from __future__ import annotations

import pytest
from sqlmodel import select

from app.db.models import Ban
from app.errors import LabelerBanned, ValidationFailed
from app.services.assignments import assign_next_suite, skip_assignment
from app.services.pools import create_pool
from tests.builders.pools import add_tasks, make_pool, make_project, open_pool


def test_skipping_suites_in_a_row_through_the_engine_bans(session, requester, labeler):
    rules = [
        {
            "collector_config": {"type": "SKIPPED_IN_ROW_ASSIGNMENTS"},
            "rules": [
                {
                    "conditions": [{"key": "skipped_in_row_count", "operator": "GTE", "value": 2}],
                    "action": {
                        "type": "RESTRICTION_V2",
                        "parameters": {
                            "scope": "POOL",
                            "duration": 1,
                            "duration_unit": "DAYS",
                            "private_comment": "skips",
                            "public_comment": "You skipped too many suites.",
                        },
                    },
                }
            ],
        }
    ]
    pool = make_pool(
        session, requester, general_per_suite=1, control_per_suite=0, quality_rules=rules
    )
    add_tasks(session, pool, general=5)
    open_pool(session, requester, pool)

    first = assign_next_suite(session, labeler=labeler, pool_id=pool.id)
    skip_assignment(
        session,
        labeler=labeler,
        assignment_id=first.assignment_id,
    )
    assert session.exec(select(Ban).where(Ban.labeler_id == labeler.id)).all() == []
    second = assign_next_suite(session, labeler=labeler, pool_id=pool.id)
    skip_assignment(
        session,
        labeler=labeler,
        assignment_id=second.assignment_id,
    )
    bans = session.exec(select(Ban).where(Ban.labeler_id == labeler.id)).all()
    assert [ban.public_comment for ban in bans] == ["You skipped too many suites."]
    with pytest.raises(LabelerBanned, match="skipped too many"):
        assign_next_suite(session, labeler=labeler, pool_id=pool.id)


def test_pool_refuses_a_rule_that_can_never_fire(session, requester):
    project = make_project(session, requester)
    never = [
        {
            "collector_config": {
                "type": "ASSIGNMENT_SUBMIT_TIME",
                "parameters": {"history_size": 5, "fast_submit_threshold_seconds": 10},
            },
            "rules": [
                {
                    "conditions": [{"key": "fast_submitted_count", "operator": "GTE", "value": 6}],
                    "action": {
                        "type": "RESTRICTION_V2",
                        "parameters": {
                            "scope": "PROJECT",
                            "duration": 1,
                            "duration_unit": "DAYS",
                            "private_comment": "fast",
                        },
                    },
                }
            ],
        }
    ]
    with pytest.raises(ValidationFailed) as caught:
        create_pool(
            session, requester=requester, project_id=project.id, name="P", quality_rules=never
        )
    assert "never" in " ".join(caught.value.errors.values()).lower()
