"""The rules engine is wired into the real labeling path and the pool settings."""

from __future__ import annotations

import pytest
from sqlmodel import select

from app.db.models import Assignment, Ban
from app.errors import LabelerBanned, ValidationFailed
from app.services.labeling.assignments import assign_next_suite, skip_assignment, submit_assignment
from app.services.projects.pools import create_pool
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


def _fast_rule(action: dict) -> list[dict]:
    """Two suites faster than 60 s out of the last two: ``action``."""
    return [
        {
            "collector_config": {
                "type": "ASSIGNMENT_SUBMIT_TIME",
                "parameters": {"history_size": 2, "fast_submit_threshold_seconds": 60},
            },
            "rules": [
                {
                    "conditions": [{"key": "fast_submitted_count", "operator": "GTE", "value": 1}],
                    "action": action,
                }
            ],
        }
    ]


def _submit_all(session, labeler, view):
    answers = {t.position: "cat" for t in view.tasks}
    return submit_assignment(
        session, labeler=labeler, assignment_id=view.assignment_id, answers=answers,
        by_position=True,
    )  # fmt: skip


def test_a_project_rule_fires_on_a_real_submit_when_the_pool_has_none(session, requester, labeler):
    ban = {
        "type": "RESTRICTION_V2",
        "parameters": {
            "scope": "PROJECT",
            "duration": 1,
            "duration_unit": "DAYS",
            "private_comment": "fast",
            "public_comment": "Too fast.",
        },
    }
    project = make_project(session, requester, quality_rules=_fast_rule(ban))
    pool = make_pool(session, requester, project, general_per_suite=2, control_per_suite=0)
    add_tasks(session, pool, general=6)
    open_pool(session, requester, pool)
    result = _submit_all(
        session, labeler, assign_next_suite(session, labeler=labeler, pool_id=pool.id)
    )
    assert result.status == "accepted" and result.paid
    with pytest.raises(LabelerBanned, match="Too fast"):
        assign_next_suite(session, labeler=labeler, pool_id=pool.id)


def test_a_rule_that_rejects_the_suite_just_submitted_shows_in_the_result(
    session, requester, labeler
):
    reject = {"type": "REJECT_ALL_ASSIGNMENTS", "parameters": {"public_comment": "Too fast."}}
    pool = make_pool(
        session,
        requester,
        general_per_suite=2,
        control_per_suite=0,
        auto_accept=False,
        quality_rules=_fast_rule(reject),
    )
    add_tasks(session, pool, general=6)
    open_pool(session, requester, pool)
    result = _submit_all(
        session, labeler, assign_next_suite(session, labeler=labeler, pool_id=pool.id)
    )
    assert (result.status, result.paid) == ("rejected", False)
    assert session.get(Assignment, result.assignment_id).review_comment == "Too fast."
