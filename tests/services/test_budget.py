"""Budget review arithmetic, launch reserving the budget, and release on close."""

from __future__ import annotations

import pytest

from app.db.models import LedgerAccount, PoolStatus
from app.errors import InsufficientFunds
from app.services.money import ledger
from app.services.projects import pools
from app.services.projects.upload_formats import TaskInput
from app.services.projects.uploads import add_tasks as add_task_items
from tests.builders.pools import add_tasks, make_pool


def test_suites_are_ceil_of_general_times_overlap_over_per_suite(session, requester):
    pool = make_pool(session, requester, overlap=3, reward_cents=5, general_per_suite=9)
    add_tasks(session, pool, general=10, control=["cat", "dog"])
    review = pools.review_budget(session, requester=requester, pool_id=pool.id)
    # ceil(10 * 3 / 9) = 4 suites; control tasks are not counted.
    assert (review.general_tasks, review.control_tasks, review.suites) == (10, 2, 4)
    assert review.task_cost_cents == 20 and review.fee_cents == 0 and review.total_cents == 20


def test_per_task_overlap_counts_in_the_budget(session, requester):
    pool = make_pool(session, requester, overlap=3, reward_cents=10, general_per_suite=2)
    add_task_items(
        session,
        requester=requester,
        pool_id=pool.id,
        items=[
            TaskInput("https://x.example/1.png", overlap=5),
            TaskInput("https://x.example/2.png"),
        ],
    )
    review = pools.review_budget(session, requester=requester, pool_id=pool.id)
    assert review.answers == 8 and review.suites == 4 and review.total_cents == 40


def test_platform_fee_is_added_and_snapshotted_at_launch(session, requester, monkeypatch):
    monkeypatch.setenv("CROWDLAB_PLATFORM_FEE_PERCENT", "20")
    from app.settings import get_settings

    get_settings.cache_clear()
    pool = make_pool(session, requester, overlap=1, reward_cents=50, general_per_suite=1)
    add_tasks(session, pool, general=3)
    review = pools.review_budget(session, requester=requester, pool_id=pool.id)
    assert (review.task_cost_cents, review.fee_cents, review.total_cents) == (150, 30, 180)
    ledger.top_up(session, user=requester, amount_cents=200)
    pools.launch_pool(session, requester=requester, pool_id=pool.id)
    session.refresh(pool)
    assert pool.fee_percent == 20
    assert ledger.get_pool_reserved(session, pool=pool) == 180
    assert ledger.get_balance(session, user=requester) == 20


def test_launch_with_short_balance_refuses_with_the_shortfall_and_changes_nothing(
    session, requester
):
    pool = make_pool(session, requester, overlap=3, reward_cents=100, general_per_suite=1)
    add_tasks(session, pool, general=2)  # 6 suites × $1.00
    ledger.top_up(session, user=requester, amount_cents=250)
    with pytest.raises(InsufficientFunds) as exc:
        pools.launch_pool(session, requester=requester, pool_id=pool.id)
    assert "needs $6.00" in exc.value.message and "at least $3.50" in exc.value.message
    assert exc.value.payload["shortfall"] == 3.5
    session.refresh(pool)
    assert pool.status == PoolStatus.DRAFT
    assert ledger.get_balance(session, user=requester) == 250
    assert ledger.get_pool_reserved(session, pool=pool) == 0


def test_launch_reserves_and_close_releases_what_was_not_spent(session, requester):
    pool = make_pool(session, requester, overlap=2, reward_cents=25, general_per_suite=2)
    add_tasks(session, pool, general=4)  # 4 suites × $0.25
    review = pools.review_budget(session, requester=requester, pool_id=pool.id)
    # partial last suites may need more: a 10 % margin, one suite (rounded up)
    assert (review.total_cents, review.margin_percent, review.margin_suites) == (100, 10, 1)
    assert review.limit_cents == review.to_reserve_cents == 125
    ledger.top_up(session, user=requester, amount_cents=500)
    pools.launch_pool(session, requester=requester, pool_id=pool.id)
    assert ledger.get_balance(session, user=requester) == 375
    assert ledger.get_balance(session, user=requester, account=LedgerAccount.RESERVED) == 125
    released = pools.close_pool(session, requester=requester, pool_id=pool.id)
    assert released == 125
    assert ledger.get_balance(session, user=requester) == 500
    assert ledger.get_pool_reserved(session, pool=pool) == 0


def test_reopening_reserves_only_what_is_missing(session, requester):
    pool = make_pool(session, requester, overlap=1, reward_cents=10, general_per_suite=1)
    add_tasks(session, pool, general=2)
    ledger.top_up(session, user=requester, amount_cents=100)
    pools.launch_pool(session, requester=requester, pool_id=pool.id)
    pools.close_pool(session, requester=requester, pool_id=pool.id)
    add_tasks(session, pool, general=1)
    review = pools.review_budget(session, requester=requester, pool_id=pool.id)
    assert review.to_reserve_cents == 30
    pools.launch_pool(session, requester=requester, pool_id=pool.id)
    assert ledger.get_pool_reserved(session, pool=pool) == 30


def test_review_warns_about_missing_control_tasks(session, requester):
    pool = make_pool(session, requester, control_per_suite=1)
    add_tasks(session, pool, general=5)
    review = pools.review_budget(session, requester=requester, pool_id=pool.id)
    assert any("none is marked" in w for w in review.warnings)


def test_pool_reservation_total_always_equals_the_ledger(session, requester, monkeypatch):
    """Launch, paid suites with a fee, a reservation that runs short, close: the pool's
    running total matches the sum of its reservation entries at every step."""
    from app.db.models import Pool
    from app.services.labeling.assignments import (
        PoolBudgetUsedUp,
        assign_next_suite,
        submit_assignment,
    )
    from app.services.projects import reservation
    from tests.builders.concurrency import in_own_session
    from tests.builders.users import make_labeler

    monkeypatch.setenv("CROWDLAB_PLATFORM_FEE_PERCENT", "10")
    from app.settings import get_settings

    get_settings.cache_clear()
    pool = make_pool(session, requester, overlap=1, reward_cents=30, general_per_suite=1)
    add_tasks(session, pool, general=3)
    ledger.top_up(session, user=requester, amount_cents=1_000)
    pools.launch_pool(session, requester=requester, pool_id=pool.id)

    def check(expected: int) -> None:
        session.expire_all()
        assert ledger.get_pool_reserved(session, pool=pool) == expected
        assert ledger.sum_pool_reserved(session, pool=pool) == expected

    check(99)  # 3 suites × (0.30 + 0.03 fee)
    # the reservation is drained by hand, so the last suite must top it up from the balance
    ledger.add_entry(
        session,
        user_id=requester.id,
        pool_id=pool.id,
        account=LedgerAccount.RESERVED,
        kind="release",
        amount_cents=-66,
        memo="test",
    )
    ledger.add_entry(
        session,
        user_id=requester.id,
        pool_id=pool.id,
        account=LedgerAccount.BALANCE,
        kind="release",
        amount_cents=66,
        memo="test",
    )
    session.commit()
    check(33)

    def do_suite(n: int) -> None:
        labeler = make_labeler(session, email=f"payee{n}@example.com")
        suite = assign_next_suite(session, labeler=labeler, pool_id=pool.id)
        result = submit_assignment(
            session,
            labeler=labeler,
            assignment_id=suite.assignment_id,
            answers={"0": "cat"},
            by_position=True,
        )
        assert result.paid
        assert ledger.get_balance(session, user=labeler) == 30

    do_suite(1)
    check(0)
    # the reservation is used up: the next suite waits for the requester's consent (the
    # take runs in a writing session, as a request's does, so its refusal rolls back)
    refused_labeler = make_labeler(session, email="refused@example.com")
    refused = in_own_session(
        lambda s: assign_next_suite(s, labeler=refused_labeler, pool_id=pool.id)
    )
    assert isinstance(refused, PoolBudgetUsedUp)
    session.expire_all()
    state = reservation.reservation_state(session, pool=session.get(Pool, pool.id))
    assert state.used_up and state.suites_left == 2 and state.needed_cents == 66
    reservation.add_to_reservation(session, requester=requester, pool_id=pool.id, amount_cents=33)
    check(33)
    do_suite(3)
    check(0)
    # launch reserved 99, 66 came back by hand, the requester added 33 more
    assert ledger.get_balance(session, user=requester) == 1_000 - 99 + 66 - 33
    assert pools.close_pool(session, requester=requester, pool_id=pool.id) == 0
    check(0)
