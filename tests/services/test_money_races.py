"""Money under concurrency: every movement is atomic against the balance it checks.

Real threads, each request or service call on its own connection, released together by a
barrier (PostgreSQL: row locks; SQLite: serialised writers). Each race is the one a probe
reproduced: no balance ever goes below zero, and every refused request is a clean 409/422.
"""

from __future__ import annotations

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func
from sqlmodel import select

from app.db.models import LedgerEntry, LedgerKind, Pool
from app.errors import InsufficientFunds
from app.services.labeling.assignments import PoolBudgetUsedUp, assign_next_suite, submit_assignment
from app.services.money import ledger
from app.services.money.bonuses import grant_bonus
from app.services.projects import pools, reservation
from tests.builders.concurrency import in_own_session, run_together
from tests.builders.pools import add_tasks, make_pool, open_pool
from tests.builders.users import make_labeler, make_requester


def _clone(client: TestClient, app) -> TestClient:
    """Another connection of the same logged-in browser or API client."""
    twin = TestClient(app)
    twin.cookies = client.cookies
    twin.headers.update(client.headers)
    return twin


def _assert_books_balance(session, *users) -> None:
    """Each running balance equals its entries and is not negative."""
    session.expire_all()
    for user in users:
        row = ledger.get_balance(session, user=user)
        assert row == ledger.sum_balance(session, user=user) >= 0, user.email


def _earn(session, labeler, cents: int) -> None:
    """Give a labeler earnings through a real paid suite of a one-task pool."""
    requester = make_requester(session)
    pool = make_pool(
        session, requester, overlap=1, reward_cents=cents, general_per_suite=1, control_per_suite=0
    )
    add_tasks(session, pool, general=1)
    open_pool(session, requester, pool, budget_cents=cents * 2)
    suite = assign_next_suite(session, labeler=labeler, pool_id=pool.id)
    submit_assignment(
        session, labeler=labeler, assignment_id=suite.assignment_id, answers={"0": "cat"},
        by_position=True,
    )  # fmt: skip


def test_twelve_withdrawals_of_the_whole_balance_pay_out_once(
    app, session, labeler, labeler_client
):
    _earn(session, labeler, 2177)
    assert ledger.get_balance(session, user=labeler) == 2177
    clients = [_clone(labeler_client, app) for _ in range(12)]

    def withdraw(i):
        return clients[i].post(
            "/labeler/earnings/withdraw", data={"amount": "21.77"}, follow_redirects=False
        )

    statuses = sorted(r.status_code for r in run_together(12, withdraw))
    assert statuses == [303] + [422] * 11, statuses
    _assert_books_balance(session, labeler)
    assert ledger.get_balance(session, user=labeler) == 0
    withdrawn = session.exec(
        select(func.count(LedgerEntry.id)).where(
            LedgerEntry.user_id == labeler.id, LedgerEntry.kind == LedgerKind.WITHDRAWAL
        )
    ).one()
    assert withdrawn == 1


def test_racing_withdrawals_take_at_most_the_balance(session, labeler):
    _earn(session, labeler, 1000)

    def withdraw(i):
        return in_own_session(lambda s: ledger.withdraw(s, user=labeler, amount_cents=300))

    results = run_together(8, withdraw)
    assert sum(not isinstance(r, Exception) for r in results) == 3  # 3 × $3 of $10
    assert all(isinstance(r, InsufficientFunds) for r in results if isinstance(r, Exception))
    _assert_books_balance(session, labeler)
    assert ledger.get_balance(session, user=labeler) == 100


def test_five_pools_opened_at_once_reserve_only_what_the_balance_holds(app, session, requester,
                                                                       requester_api):  # fmt: skip
    ledger.top_up(session, user=requester, amount_cents=1000)
    pool_ids = []
    for _ in range(5):  # each costs $8: 8 tasks, 1 per suite, $1 a suite, no fee
        pool = make_pool(
            session, requester, overlap=1, reward_cents=100, general_per_suite=1,
            control_per_suite=0,
        )  # fmt: skip
        add_tasks(session, pool, general=8)
        pool_ids.append(pool.id)
    clients = [_clone(requester_api, app) for _ in range(5)]

    def open_(i):
        return clients[i].post(f"/api/v1/pools/{pool_ids[i]}/open")

    responses = run_together(5, open_)
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [202] + [409] * 4, [r.text for r in responses]
    assert all(r.json()["code"] == "INSUFFICIENT_FUNDS" for r in responses if r.status_code == 409)
    _assert_books_balance(session, requester)
    assert ledger.get_balance(session, user=requester) == 200
    session.expire_all()
    opened = [session.get(Pool, pid) for pid in pool_ids]
    assert [p.status for p in opened].count("open") == 1
    assert sum(ledger.get_pool_reserved(session, pool=p) for p in opened) == 800


def test_racing_bonuses_pay_only_what_the_balance_holds(session, requester, labeler):
    pool = make_pool(
        session, requester, overlap=1, reward_cents=10, general_per_suite=1, control_per_suite=0
    )
    add_tasks(session, pool, general=1)
    open_pool(session, requester, pool, budget_cents=10)
    suite = assign_next_suite(session, labeler=labeler, pool_id=pool.id)
    submit_assignment(
        session, labeler=labeler, assignment_id=suite.assignment_id, answers={"0": "cat"},
        by_position=True,
    )  # fmt: skip
    ledger.top_up(session, user=requester, amount_cents=500)
    before = ledger.get_balance(session, user=requester)

    def bonus(i):
        return in_own_session(
            lambda s: grant_bonus(
                s, requester=requester, labeler_id=labeler.id, amount_cents=200, message="Thanks"
            )
        )

    results = run_together(6, bonus)
    granted = [r for r in results if not isinstance(r, Exception)]
    assert len(granted) == before // 200
    assert all(isinstance(r, InsufficientFunds) for r in results if isinstance(r, Exception))
    _assert_books_balance(session, requester, labeler)
    assert ledger.get_balance(session, user=requester) == before - 200 * len(granted)


def test_one_bonus_operation_sent_six_times_at_once_pays_once(session, requester, labeler):
    from app.services.jobs.operations import OperationExists
    from app.services.money.bonus_batches import BonusItem, grant_bonuses

    pool = make_pool(
        session, requester, overlap=1, reward_cents=10, general_per_suite=1, control_per_suite=0
    )
    add_tasks(session, pool, general=1)
    open_pool(session, requester, pool, budget_cents=10)
    suite = assign_next_suite(session, labeler=labeler, pool_id=pool.id)
    submit_assignment(
        session, labeler=labeler, assignment_id=suite.assignment_id, answers={"0": "cat"},
        by_position=True,
    )  # fmt: skip
    ledger.top_up(session, user=requester, amount_cents=5000)
    before = ledger.get_balance(session, user=requester)
    item = BonusItem(labeler_id=labeler.id, amount_cents=300, message="Thanks")

    def bonus(i):
        try:
            return in_own_session(
                lambda s: grant_bonuses(
                    s, requester=requester, items=[item], operation_id="op-same", record=True
                )
            )
        except Exception as exc:  # noqa: BLE001 - a race lost in the database is reported
            return exc

    results = run_together(6, bonus)
    paid = [r for r in results if not isinstance(r, Exception)]
    assert len(paid) == 1, results
    assert all(isinstance(r, OperationExists) for r in results if r not in paid), results
    _assert_books_balance(session, requester, labeler)
    spent = before - ledger.get_balance(session, user=requester)
    assert 300 <= spent < 600


def test_suites_past_the_launch_budget_are_reserved_first_or_not_handed_out(session, requester):
    """7 tasks × overlap 2 at 5 per suite, launched with no margin: launch reserves 3 suites,
    but two labelers need 4 (each one's last suite holds the 2 tasks left). The 4th is handed
    out only once the requester adds its pay to the reservation: a top-up of the balance
    alone is not consent to spend it on this pool."""
    pool = make_pool(
        session, requester, overlap=2, reward_cents=50, general_per_suite=5, control_per_suite=0
    )
    add_tasks(session, pool, general=7)
    review = pools.review_budget(session, requester=requester, pool_id=pool.id)
    assert review.suites == 3 and review.to_reserve_cents == 200  # 10 % margin: 1 suite
    review = pools.review_budget(session, requester=requester, pool_id=pool.id, margin_percent=0)
    assert review.to_reserve_cents == 150
    ledger.top_up(session, user=requester, amount_cents=review.to_reserve_cents)
    pools.launch_pool(session, requester=requester, pool_id=pool.id, margin_percent=0)
    assert ledger.get_balance(session, user=requester) == 0
    a, b = make_labeler(session), make_labeler(session)

    def do_suite(labeler):
        suite = assign_next_suite(session, labeler=labeler, pool_id=pool.id)
        answers = {str(i): "cat" for i in range(len(suite.tasks))}
        return submit_assignment(
            session, labeler=labeler, assignment_id=suite.assignment_id, answers=answers,
            by_position=True,
        )  # fmt: skip

    assert do_suite(a).paid and do_suite(b).paid and do_suite(a).paid  # 5, 5, 2 tasks
    # (takes run in a writing session, as a request's does, so a refusal rolls back)
    refused = in_own_session(lambda s: assign_next_suite(s, labeler=b, pool_id=pool.id))
    assert isinstance(refused, PoolBudgetUsedUp), "a suite nobody can pay for was handed out"
    assert "budget is used up" in refused.message
    session.expire_all()
    _assert_books_balance(session, requester, a, b)
    ledger.top_up(session, user=requester, amount_cents=50)
    refused = in_own_session(lambda s: assign_next_suite(s, labeler=b, pool_id=pool.id))
    assert isinstance(refused, PoolBudgetUsedUp)
    session.expire_all()
    assert ledger.get_balance(session, user=requester) == 50  # not spent without consent
    state = reservation.reservation_state(session, pool=pool)
    assert state.used_up and state.needed_cents == 50
    reservation.add_to_reservation(session, requester=requester, pool_id=pool.id, amount_cents=50)
    assert do_suite(b).paid
    _assert_books_balance(session, requester, a, b)
    assert ledger.get_balance(session, user=requester) == 0
    assert ledger.get_balance(session, user=b) == 100
    session.expire_all()
    pool = session.get(Pool, pool.id)
    assert (
        ledger.get_pool_reserved(session, pool=pool)
        == ledger.sum_pool_reserved(session, pool=pool)
        == 0
    )


def test_closing_keeps_what_a_suite_still_out_may_cost(session, requester, labeler):
    pool = make_pool(
        session, requester, overlap=1, reward_cents=40, general_per_suite=1, control_per_suite=0
    )
    add_tasks(session, pool, general=3)
    open_pool(session, requester, pool, budget_cents=120)
    suite = assign_next_suite(session, labeler=labeler, pool_id=pool.id)
    assert pools.close_pool(session, requester=requester, pool_id=pool.id) == 80
    result = submit_assignment(
        session, labeler=labeler, assignment_id=suite.assignment_id, answers={"0": "cat"},
        by_position=True,
    )  # fmt: skip
    assert result.paid and ledger.get_balance(session, user=labeler) == 40
    _assert_books_balance(session, requester, labeler)
    session.expire_all()
    assert ledger.get_pool_reserved(session, pool=session.get(Pool, pool.id)) == 0


# --- the property: whatever runs at once, the books add up -------------------------------

_OPS = st.lists(
    st.tuples(
        st.sampled_from(["top_up", "reserve", "pay", "bonus", "withdraw"]),
        st.integers(min_value=0, max_value=2),  # which user of the kind
        st.integers(min_value=1, max_value=700),  # cents
    ),
    min_size=2,
    max_size=8,
)


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=_OPS)
def test_random_concurrent_movements_keep_the_ledger_whole(session, ops):
    """Top-ups, reserves, suite payments, bonuses and withdrawals, all at once: no balance
    below zero, each running balance equals its entries, and every cent in the ledger is
    money put in less money paid out (withdrawals, platform fees)."""
    requesters = [make_requester(session) for _ in range(3)]
    labelers = [make_labeler(session) for _ in range(3)]
    pools_ = []
    for requester in requesters:
        pool = make_pool(
            session, requester, overlap=1, reward_cents=30, general_per_suite=1,
            control_per_suite=0,
        )  # fmt: skip
        add_tasks(session, pool, general=12)
        ledger.top_up(session, user=requester, amount_cents=200)
        pools_.append(open_pool(session, requester, pool, budget_cents=60))
    for labeler in labelers:  # accepted work: bonuses may go to them, withdrawals have money
        for pool in pools_:
            suite = assign_next_suite(session, labeler=labeler, pool_id=pool.id)
            submit_assignment(
                session, labeler=labeler, assignment_id=suite.assignment_id,
                answers={"0": "cat"}, by_position=True,
            )  # fmt: skip

    def run(i):
        kind, who, cents = ops[i]
        requester, labeler, pool = requesters[who], labelers[who], pools_[who]

        def op(s):
            if kind == "top_up":
                return ledger.top_up(s, user=requester, amount_cents=cents)
            if kind == "reserve":
                ledger.reserve_for_pool(s, pool=s.get(Pool, pool.id), amount_cents=cents, memo="p")
                return s.commit()
            if kind == "pay":
                suite = assign_next_suite(s, labeler=labeler, pool_id=pool.id)
                return submit_assignment(
                    s, labeler=labeler, assignment_id=suite.assignment_id,
                    answers={"0": "dog"}, by_position=True,
                )  # fmt: skip
            if kind == "bonus":
                return grant_bonus(
                    s, requester=requester, labeler_id=labeler.id,
                    amount_cents=min(cents, 10_000), message="Bonus", pool_id=pool.id,
                )  # fmt: skip
            return ledger.withdraw(s, user=labeler, amount_cents=cents)

        return in_own_session(op)

    results = run_together(len(ops), run)
    assert not [r for r in results if isinstance(r, Exception) and r.status_code >= 500]
    session.expire_all()
    _assert_books_balance(session, *requesters, *labelers)
    for pool in pools_:
        pool = session.get(Pool, pool.id)
        assert (
            ledger.get_pool_reserved(session, pool=pool)
            == ledger.sum_pool_reserved(session, pool=pool)
            >= 0
        )
    entries = session.exec(select(LedgerEntry.kind, func.sum(LedgerEntry.amount_cents)).group_by(
        LedgerEntry.kind)).all()  # fmt: skip
    by_kind = {kind: int(total) for kind, total in entries}
    put_in = by_kind.get(LedgerKind.TOPUP, 0)
    paid_out = -by_kind.get(LedgerKind.WITHDRAWAL, 0) - by_kind.get(LedgerKind.FEE, 0)
    assert sum(by_kind.values()) == put_in - paid_out
