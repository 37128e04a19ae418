"""Rules on submitted suites: scripted labelers, the action fires exactly when it should."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

import app.services.quality as quality
from app.db.models import Pool, Skill, UserSkill
from app.db.types import utcnow
from app.services.quality import active_ban_for, bans
from app.services.quality.presets import image_classification_preset
from tests.builders.pools import add_tasks, make_pool, open_pool
from tests.builders.users import make_labeler

from .helpers import ban_rule, bans_of, rule, submit_suite

GOLDEN = {"type": "GOLDEN_SET", "parameters": {"history_size": 10}}


def _pool(session, requester, rules, **fields):
    pool = make_pool(session, requester, quality_rules=rules, **fields)
    add_tasks(session, pool, general=12, control=["cat", "dog", "cat", "dog", "cat"])
    return open_pool(session, requester, pool)


def _tasks(session, pool, kind="general"):
    from app.db.models import Task

    session.expire_all()
    return list(
        session.exec(
            select(Task).where(Task.pool_id == pool.id, Task.kind == kind).order_by(Task.id)
        )
    )


def test_fast_responses_preset_bans_on_the_fourth_fast_suite_of_five(
    session, requester, labeler, monkeypatch
):
    pool = _pool(session, requester, image_classification_preset())
    tasks = _tasks(session, pool)
    for i, duration in enumerate([5, 5, 40, 5]):  # 3 fast of 4 → nothing
        submit_suite(pool, labeler, [(tasks[i], "cat")], duration=duration)
        assert bans_of(session, labeler) == []
    submit_suite(pool, labeler, [(tasks[4], "cat")], duration=5)  # 4 fast of the last 5
    [ban] = bans_of(session, labeler)
    assert ban.scope == "project" and ban.project_id == pool.project_id
    assert ban.public_comment == "Your answers came too fast to be careful."
    assert ban.private_comment.startswith("Fast responses")
    assert timedelta(hours=23, minutes=59) < ban.expires_at - ban.created_at <= timedelta(days=1)
    assert active_ban_for(session, labeler_id=labeler.id, pool=pool).id == ban.id
    # the ban ends after its duration
    later = utcnow() + timedelta(days=1, seconds=5)
    monkeypatch.setattr(quality, "utcnow", lambda: later)
    assert active_ban_for(session, labeler_id=labeler.id, pool=pool) is None


def test_history_restarts_after_a_ban(session, requester, labeler):
    pool = _pool(session, requester, image_classification_preset())
    tasks = _tasks(session, pool)
    for i in range(4):
        submit_suite(pool, labeler, [(tasks[i], "cat")], duration=3)
    [first] = bans_of(session, labeler)
    bans.lift_ban(session, requester=requester, ban_id=first.id)
    for i in range(4, 7):  # the window still holds 4+ fast suites, but history restarted
        submit_suite(pool, labeler, [(tasks[i], "cat")], duration=3)
        assert len(bans_of(session, labeler)) == 1
    submit_suite(pool, labeler, [(tasks[7], "cat")], duration=3)
    assert len(bans_of(session, labeler)) == 2


def _majority_script(session, requester, threshold):
    rules = [
        ban_rule(
            {
                "type": "MAJORITY_VOTE",
                "parameters": {"answer_threshold": threshold, "history_size": 10},
            },
            [("total_answers_count", "GTE", 3), ("correct_answers_rate", "LT", 40)],
        )
    ]
    pool = _pool(session, requester, rules, overlap=3)
    tasks = _tasks(session, pool)
    a, b, c = (make_labeler(session) for _ in range(3))
    history = []
    for task in tasks[:3]:
        submit_suite(pool, c, [(task, "dog")])  # the odd one out answers first
        submit_suite(pool, b, [(task, "cat")])
        submit_suite(pool, a, [(task, "cat")])  # a's submit completes the overlap
        history.append(len(bans_of(session, c)))
    return history, (a, b, c)


def test_majority_vote_accept_as_majority_2_bans_the_outlier_after_three_scored(session, requester):
    history, (a, b, c) = _majority_script(session, requester, threshold=2)
    assert history == [0, 0, 1]  # not a task earlier
    assert bans_of(session, a) == [] and bans_of(session, b) == []


def test_majority_vote_accept_as_majority_3_never_scores_two_to_one(session, requester):
    history, _ = _majority_script(session, requester, threshold=3)
    assert history == [0, 0, 0]


def test_control_tasks_ban_and_skill_from_correct_rate(session, requester, labeler):
    skill = Skill(owner_id=requester.id, name="Cats")
    session.add(skill)
    session.commit()
    rules = [
        ban_rule(
            GOLDEN,
            [("golden_set_answers_count", "GTE", 3), ("golden_set_correct_answers_rate", "LT", 50)],
        ),
        rule(
            GOLDEN,
            [("golden_set_answers_count", "GTE", 1)],
            {
                "type": "SET_SKILL_FROM_OUTPUT_FIELD",
                "parameters": {"skill_id": skill.id, "from_field": "correct_answers_rate"},
            },
        ),
    ]
    pool = _pool(session, requester, rules)
    controls = _tasks(session, pool, "control")  # known: cat dog cat dog cat
    general = _tasks(session, pool)
    submit_suite(pool, labeler, [(general[0], "cat"), (controls[0], "cat")])  # right
    submit_suite(pool, labeler, [(general[1], "cat"), (controls[1], "cat")])  # wrong
    assert bans_of(session, labeler) == []
    values = {
        s.name: v
        for s, v in session.exec(
            select(Skill, UserSkill.value)
            .join(UserSkill, UserSkill.skill_id == Skill.id)
            .where(UserSkill.user_id == labeler.id)
        )
    }
    assert values == {"Cats": 50.0, "Control accuracy": 50.0}
    submit_suite(pool, labeler, [(general[2], "cat"), (controls[3], "cat")])  # wrong: 1 of 3
    assert len(bans_of(session, labeler)) == 1


def test_submitted_count_and_earnings_caps_ban_in_the_pool(session, requester, labeler):
    other = make_labeler(session)
    rules = [
        ban_rule(
            {"type": "ANSWER_COUNT"}, [("assignments_accepted_count", "GTE", 3)], scope="POOL"
        ),
        ban_rule({"type": "INCOME"}, [("income_sum_for_last_24_hours", "GTE", 0.10)], scope="POOL"),
    ]
    pool = _pool(session, requester, rules, reward_cents=4)
    tasks = _tasks(session, pool)
    submit_suite(pool, labeler, [(tasks[0], "cat")])
    submit_suite(pool, labeler, [(tasks[1], "cat")])
    assert bans_of(session, labeler) == []
    submit_suite(pool, labeler, [(tasks[2], "cat")])  # 3 suites, $0.12
    assert {b.source for b in bans_of(session, labeler)} == {"rule:ANSWER_COUNT", "rule:INCOME"}
    assert all(b.scope == "pool" and b.pool_id == pool.id for b in bans_of(session, labeler))
    submit_suite(pool, other, [(tasks[0], "dog")])
    assert bans_of(session, other) == []


def test_skill_filters_and_min_rating(session, requester, labeler):
    from app.services.quality.skills import (
        create_skill,
        labeler_passes_skill_filters,
        set_user_skill,
    )

    skill = create_skill(session, requester=requester, name="Birds")
    pool = make_pool(
        session, requester, skill_filters=[{"skill_id": skill.id, "operator": "GTE", "value": 70}]
    )
    assert not labeler_passes_skill_filters(session, labeler.id, pool)
    set_user_skill(session, requester=requester, skill_id=skill.id, labeler_id=labeler.id, value=80)
    assert labeler_passes_skill_filters(session, labeler.id, pool)
    rated = make_pool(session, requester, min_rating=60)
    assert labeler_passes_skill_filters(session, labeler.id, rated)  # no rating yet
    add_tasks(session, rated, control=["cat", "dog"])
    open_pool(session, requester, rated)
    controls = _tasks(session, rated, "control")
    submit_suite(rated, labeler, [(controls[0], "dog")])
    session.expire_all()
    assert not labeler_passes_skill_filters(session, labeler.id, session.get(Pool, rated.id))
