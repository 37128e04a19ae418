"""Large pools' page figures: counted once, reused a few seconds, never for money."""

from __future__ import annotations

import pytest

from app.services.figures_cache import FiguresCache, page_figures
from app.services.labeling import available
from app.services.labeling.assignments import assign_next_suite
from app.services.labeling.available import list_available_pools
from app.services.labeling.submissions import submit_assignment
from app.services.projects import control_tasks, pools, progress, tally
from tests.builders.pools import add_tasks, make_pool, open_pool


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_small_figures_are_counted_every_time_and_large_ones_kept_while_fresh():
    clock = Clock()
    cache = FiguresCache(fresh_s=5, clock=clock)
    calls = []

    def count(value):
        calls.append(value)
        return value

    assert cache.get("a", lambda: count(3), keep=lambda v: v > 10) == 3
    assert cache.get("a", lambda: count(4), keep=lambda v: v > 10) == 4  # small: afresh
    assert cache.get("a", lambda: count(50), keep=lambda v: v > 10) == 50
    assert cache.get("a", lambda: count(60), keep=lambda v: v > 10) == 50  # large: kept
    clock.now += 5.1
    assert cache.get("a", lambda: count(70), keep=lambda v: v > 10) == 70  # stale: recounted
    assert calls == [3, 4, 50, 70]


def test_a_slow_count_is_kept_longer_but_not_past_the_ceiling():
    clock = Clock()
    cache = FiguresCache(fresh_s=5, max_fresh_s=30, clock=clock)

    def count_taking(seconds, value):
        def count():
            clock.now += seconds
            return value

        return count

    assert cache.get("a", count_taking(0.5, 1), keep=lambda v: True) == 1  # kept 10 s
    clock.now += 9
    assert cache.get("a", count_taking(0.5, 2), keep=lambda v: True) == 1
    clock.now += 1.1
    assert cache.get("a", count_taking(3, 3), keep=lambda v: True) == 3  # 60 s -> kept 30 s
    clock.now += 29
    assert cache.get("a", count_taking(0, 4), keep=lambda v: True) == 3
    clock.now += 1.1
    assert cache.get("a", count_taking(0, 5), keep=lambda v: True) == 5


def test_while_one_caller_recounts_the_others_get_the_previous_figure():
    clock = Clock()
    cache = FiguresCache(fresh_s=5, clock=clock)
    cache.get(("tally", 1), lambda: 50, keep=lambda v: True)
    clock.now += 10
    seen_meanwhile = []

    def slow_count():
        seen_meanwhile.append(cache.get(("tally", 1), lambda: -1, keep=lambda v: True))
        return 80

    assert cache.get(("tally", 1), slow_count, keep=lambda v: True) == 80
    assert seen_meanwhile == [50]
    assert cache.get(("tally", 1), lambda: -1, keep=lambda v: True) == 80


def test_a_failed_recount_lets_the_next_caller_try_again():
    clock = Clock()
    cache = FiguresCache(fresh_s=5, clock=clock)
    cache.get(("tally", 1), lambda: 50, keep=lambda v: True)
    clock.now += 10

    def broken():
        raise RuntimeError("database went away")

    with pytest.raises(RuntimeError):
        cache.get(("tally", 1), broken, keep=lambda v: True)
    assert cache.get(("tally", 1), lambda: 60, keep=lambda v: True) == 60


def test_forget_pool_drops_only_that_pools_figures():
    cache = FiguresCache(fresh_s=5, clock=Clock())
    for key in (("tally", 1, 3), ("progress", 1), ("tally", 2, 3)):
        cache.get(key, lambda: 1, keep=lambda v: True)
    cache.forget_pool(1)
    assert cache.get(("tally", 1, 3), lambda: 2, keep=lambda v: True) == 2
    assert cache.get(("progress", 1), lambda: 2, keep=lambda v: True) == 2
    assert cache.get(("tally", 2, 3), lambda: 2, keep=lambda v: True) == 1


@pytest.fixture
def large_from_ten(monkeypatch):
    """Pools count as large from 10 tasks, so a test pool's figures are kept."""
    monkeypatch.setattr(tally, "LARGE_POOL_TASKS", 10)
    monkeypatch.setattr(progress, "LARGE_POOL_TASKS", 10)
    yield
    page_figures.clear()


def test_a_large_pools_page_shows_kept_figures_but_launch_counts_afresh(
    session, requester, large_from_ten
):
    pool = make_pool(session, requester, overlap=2, general_per_suite=4, control_per_suite=0)
    add_tasks(session, pool, general=12)
    before = pools.review_budget(session, requester=requester, pool_id=pool.id)
    assert (before.general_tasks, before.answers) == (12, 24)
    add_tasks(session, pool, general=4)  # a change the kept page figures do not see yet
    assert pools.review_budget(session, requester=requester, pool_id=pool.id).answers == 24
    pools.ledger.top_up(session, user=requester, amount_cents=10_000)
    pools.launch_pool(session, requester=requester, pool_id=pool.id, margin_percent=0)
    # launch counted all 16 tasks: 32 answers in suites of 4 at $0.05, plus the fee
    fee = round(5 * pools.get_settings().platform_fee_percent / 100)
    assert pools.ledger.get_pool_reserved(session, pool=pool) == 8 * (5 + fee)


def test_marking_a_control_task_shows_at_once_in_a_large_pool(session, requester, large_from_ten):
    pool = make_pool(session, requester, overlap=1, general_per_suite=4)
    tasks = add_tasks(session, pool, general=12)
    first = control_tasks.control_distribution(session, requester=requester, pool_id=pool.id)
    assert (first.controls, first.general) == (0, 12)
    control_tasks.mark_control(session, requester=requester, task_id=tasks[0].id, answer="dog")
    after = control_tasks.control_distribution(session, requester=requester, pool_id=pool.id)
    assert (after.controls, after.general) == (1, 11)
    assert {option.value: n for option, n in after.rows}["dog"] == 1


def test_labeler_page_counts_suites_left_up_to_a_cap(session, requester, labeler, monkeypatch):
    pool = make_pool(session, requester, overlap=1, general_per_suite=2, control_per_suite=0)
    add_tasks(session, pool, general=12)
    open_pool(session, requester, pool)
    monkeypatch.setattr(available, "SUITES_SHOWN_AT_MOST", 4)
    [card] = list_available_pools(session, labeler=labeler)
    assert (card.suites_remaining, card.suites_remaining_text) == (4, "4+ suites")
    monkeypatch.setattr(available, "SUITES_SHOWN_AT_MOST", 1000)
    view = assign_next_suite(session, labeler=labeler, pool_id=pool.id)
    submit_assignment(
        session,
        labeler=labeler,
        assignment_id=view.assignment_id,
        answers={t.position: "cat" for t in view.tasks},
        by_position=True,
    )
    [card] = list_available_pools(session, labeler=labeler)
    assert (card.suites_remaining, card.suites_remaining_text) == (5, "5 suites")
