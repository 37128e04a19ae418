"""Dry run on past answers; skipped suites in a row; approve-all."""

from __future__ import annotations

from sqlmodel import select

from app.db.models import Assignment, Ban, Task
from app.services.quality import dry_run
from app.services.quality.presets import image_classification_preset
from app.services.quality.rules import parse_configs
from tests.builders.pools import add_tasks, make_pool, open_pool
from tests.builders.users import make_labeler

from .helpers import ban_rule, bans_of, rule, skip_suite, submit_suite


def _pool(session, requester, rules=(), **fields):
    pool = make_pool(session, requester, quality_rules=list(rules), overlap=3, **fields)
    add_tasks(session, pool, general=8, control=["cat", "dog"])
    open_pool(session, requester, pool)
    session.expire_all()
    tasks = list(session.exec(select(Task).where(Task.pool_id == pool.id).order_by(Task.id)))
    return pool, tasks


def test_dry_run_counts_labelers_a_rule_would_have_banned_without_banning(session, requester):
    pool, tasks = _pool(session, requester)  # no rules while the work happens
    fast, careful, outlier = (make_labeler(session) for _ in range(3))
    for i in range(5):
        submit_suite(pool, fast, [(tasks[i], "cat")], duration=4)
        submit_suite(pool, careful, [(tasks[i], "cat")], duration=60)
        submit_suite(pool, outlier, [(tasks[i], "dog")], duration=60)
    results = dry_run.dry_run(
        session,
        requester=requester,
        pool_id=pool.id,
        configs=parse_configs(image_classification_preset()),
    )
    assert [(r.collector, [h[0] for h in r.hits]) for r in results] == [
        ("ASSIGNMENT_SUBMIT_TIME", [fast.id]),
        ("MAJORITY_VOTE", [outlier.id]),
        ("GOLDEN_SET", []),  # the pool has no control tasks
    ]
    assert session.exec(select(Ban)).all() == []


def test_skipped_in_a_row(session, requester, labeler):
    rules = [
        ban_rule(
            {"type": "SKIPPED_IN_ROW_ASSIGNMENTS"},
            [("skipped_in_row_count", "GTE", 3)],
            scope="POOL",
        )
    ]
    pool, tasks = _pool(session, requester, rules)
    skip_suite(pool, labeler)
    skip_suite(pool, labeler)
    submit_suite(pool, labeler, [(tasks[0], "cat")])  # breaks the run
    skip_suite(pool, labeler)
    skip_suite(pool, labeler)
    assert bans_of(session, labeler) == []
    skip_suite(pool, labeler)
    assert [b.scope for b in bans_of(session, labeler)] == ["pool"]


def test_approve_all_after_good_control_answers(session, requester, labeler):
    approve = rule(
        {"type": "GOLDEN_SET", "parameters": {"history_size": 5}},
        [("golden_set_answers_count", "GTE", 2), ("golden_set_correct_answers_rate", "GTE", 100)],
        {"type": "APPROVE_ALL_ASSIGNMENTS", "parameters": {}},
    )
    pool, tasks = _pool(session, requester, [approve], auto_accept=False)
    general, controls = tasks[:8], tasks[8:]
    first = submit_suite(pool, labeler, [(general[0], "cat"), (controls[0], "cat")])
    session.expire_all()
    assert session.get(Assignment, first).status == "submitted"
    second = submit_suite(pool, labeler, [(general[1], "cat"), (controls[1], "dog")])
    session.expire_all()
    assert {session.get(Assignment, i).status for i in (first, second)} == {"accepted"}
