"""A pool's reservation is its spending limit: the margin the rules call for, and adding to
it only by the requester's choice."""

from __future__ import annotations

import pytest

from app.db.models import Pool
from app.errors import Conflict, InsufficientFunds, NotFound, ValidationFailed
from app.services.labeling.assignments import PoolBudgetUsedUp, assign_next_suite
from app.services.money import ledger
from app.services.projects import pools, reservation
from app.services.quality.presets import image_classification_preset
from tests.builders.concurrency import in_own_session
from tests.builders.pools import add_tasks, make_pool, open_pool
from tests.builders.users import make_labeler, make_requester


def test_rules_that_reissue_tasks_widen_the_range_and_the_reservation(session, requester):
    pool = make_pool(
        session, requester, overlap=1, reward_cents=10, general_per_suite=1, control_per_suite=0,
        quality_rules=image_classification_preset(),
    )  # fmt: skip
    add_tasks(session, pool, general=50)
    review = pools.review_budget(session, requester=requester, pool_id=pool.id)
    assert review.total_cents == 500
    assert any("re-issued" in risk for risk in review.risks)
    assert (review.margin_percent, review.margin_suites, review.margin_cents) == (30, 15, 150)
    assert review.limit_cents == review.to_reserve_cents == 650

    # without the exclusion of banned labelers' answers, bans re-issue nothing
    pool.exclude_banned_answers = False
    session.add(pool)
    session.commit()
    review = pools.review_budget(session, requester=requester, pool_id=pool.id)
    assert review.risks == [] and review.margin_percent == 0
    assert review.to_reserve_cents == 500


def test_a_chosen_margin_is_reserved_and_a_bad_one_is_refused(session, requester):
    pool = make_pool(session, requester, overlap=1, reward_cents=10, general_per_suite=1)
    add_tasks(session, pool, general=10)
    for bad in ("-1", "301", "ten", "2.5"):
        with pytest.raises(ValidationFailed) as exc:
            pools.review_budget(session, requester=requester, pool_id=pool.id, margin_percent=bad)
        assert "margin_percent" in exc.value.errors
    ledger.top_up(session, user=requester, amount_cents=1_000)
    pools.launch_pool(session, requester=requester, pool_id=pool.id, margin_percent="50")
    assert ledger.get_pool_reserved(session, pool=pool) == 150
    assert ledger.get_balance(session, user=requester) == 850


def test_adding_to_the_reservation_needs_an_open_own_pool_and_the_balance(session, requester):
    pool = make_pool(session, requester, overlap=1, reward_cents=10, general_per_suite=1)
    add_tasks(session, pool, general=3)
    with pytest.raises(Conflict):  # a draft has no reservation to grow
        reservation.add_to_reservation(
            session, requester=requester, pool_id=pool.id, amount_cents=5
        )
    open_pool(session, requester, pool, budget_cents=30)
    ledger.top_up(session, user=requester, amount_cents=100)
    other = make_requester(session)
    with pytest.raises(NotFound):
        reservation.add_to_reservation(session, requester=other, pool_id=pool.id, amount_cents=5)
    with pytest.raises(ValidationFailed):
        reservation.add_to_reservation(
            session, requester=requester, pool_id=pool.id, amount_cents=0
        )
    balance = ledger.get_balance(session, user=requester)
    with pytest.raises(InsufficientFunds) as exc:
        reservation.add_to_reservation(
            session, requester=requester, pool_id=pool.id, amount_cents=balance + 1
        )
    assert "Top up at least $0.01" in exc.value.message
    assert ledger.get_pool_reserved(session, pool=pool) == 30
    state = reservation.add_to_reservation(
        session, requester=requester, pool_id=pool.id, amount_cents=balance
    )
    assert state.reserved_cents == 30 + balance and state.balance_cents == 0
    assert ledger.sum_pool_reserved(session, pool=pool) == 30 + balance


def test_a_used_up_reservation_stops_takes_and_leaves_the_balance_alone(session, requester):
    pool = make_pool(
        session, requester, overlap=1, reward_cents=40, general_per_suite=1, control_per_suite=0
    )
    add_tasks(session, pool, general=1)
    open_pool(session, requester, pool, budget_cents=40)
    add_tasks(session, pool, general=2)  # added while open: not reserved for
    ledger.top_up(session, user=requester, amount_cents=1_000)
    before = ledger.get_balance(session, user=requester)
    a, b = make_labeler(session), make_labeler(session)
    first = in_own_session(lambda s: assign_next_suite(s, labeler=a, pool_id=pool.id))
    assert not isinstance(first, Exception), first
    refused = in_own_session(lambda s: assign_next_suite(s, labeler=b, pool_id=pool.id))
    assert isinstance(refused, PoolBudgetUsedUp)
    session.expire_all()
    assert ledger.get_balance(session, user=requester) == before
    state = reservation.reservation_state(session, pool=session.get(Pool, pool.id))
    # one suite is out and covered; two are still needed and nothing is free
    assert (state.outstanding_cents, state.free_cents, state.suites_left) == (40, 0, 2)
    assert state.used_up and state.needed_cents == 80
    reservation.add_to_reservation(session, requester=requester, pool_id=pool.id, amount_cents=80)
    taken = in_own_session(lambda s: assign_next_suite(s, labeler=b, pool_id=pool.id))
    assert not isinstance(taken, Exception), taken
