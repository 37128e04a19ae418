"""Manual review, auto-accept, review by file, bonuses: money stays balanced."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from app.db.models import Assignment, Task
from app.db.types import utcnow
from app.errors import UploadRejected, ValidationFailed
from app.services.money import bonuses, ledger
from app.services.quality import review
from tests.builders.pools import add_tasks, make_pool, open_pool
from tests.builders.users import make_labeler

from .helpers import ban_rule, bans_of, ledger_total, rule, submit_suite


def _review_pool(session, requester, rules=(), **fields):
    pool = make_pool(
        session,
        requester,
        auto_accept=False,
        review_period_days=3,
        overlap=2,
        general_per_suite=2,
        control_per_suite=0,
        quality_rules=list(rules),
        **fields,
    )
    add_tasks(session, pool, general=6)
    open_pool(session, requester, pool, budget_cents=1000)
    session.expire_all()
    tasks = list(session.exec(select(Task).where(Task.pool_id == pool.id).order_by(Task.id)))
    return pool, tasks


def _balances(session, *users):
    session.expire_all()
    return [ledger.get_balance(session, user=u) for u in users]


def test_accept_pays_once_reject_returns_slots_and_ledger_balances(session, requester, labeler):
    pool, tasks = _review_pool(session, requester)
    first = submit_suite(pool, labeler, [(tasks[0], "cat"), (tasks[1], "dog")])
    second = submit_suite(pool, labeler, [(tasks[2], "cat"), (tasks[3], "dog")])
    assert _balances(session, labeler) == [0]  # nothing paid before review
    review.accept_assignment(session, requester=requester, assignment_id=first)
    review.accept_assignment(session, requester=requester, assignment_id=first)  # idempotent
    assert _balances(session, labeler) == [5]
    with pytest.raises(ValidationFailed):
        review.reject_assignment(session, requester=requester, assignment_id=second, comment=" ")
    done = review.reject_assignment(
        session, requester=requester, assignment_id=second, comment="Blurry answers"
    )
    assert done.status == "rejected" and done.review_comment == "Blurry answers"
    assert _balances(session, labeler) == [5]
    assert [session.get(Task, t.id).taken_count for t in tasks[:4]] == [1, 1, 0, 0]
    assert ledger_total(session) == 0  # every cent moved has a counterpart
    assert (
        ledger.get_balance(session, user=requester)
        + ledger.get_pool_reserved(session, pool=pool)
        + 5
        == 1000
    )


def test_auto_accept_after_the_review_period(session, requester, labeler):
    pool, tasks = _review_pool(session, requester)
    assignment_id = submit_suite(pool, labeler, [(tasks[0], "cat"), (tasks[1], "cat")])
    assert review.auto_accept_due(session, now=utcnow() + timedelta(days=2)) == 0
    assert review.auto_accept_due(session, now=utcnow() + timedelta(days=3, minutes=1)) == 1
    session.expire_all()
    assert session.get(Assignment, assignment_id).status == "accepted"
    assert _balances(session, labeler) == [5]
    assert ledger_total(session) == 0


def test_review_file_round_trip_and_bad_rows_apply_nothing(session, requester):
    pool, tasks = _review_pool(session, requester)
    a, b = make_labeler(session), make_labeler(session)
    ida = submit_suite(pool, a, [(tasks[0], "cat"), (tasks[1], "dog")])
    idb = submit_suite(pool, b, [(tasks[0], "dog"), (tasks[1], "dog")])
    text = review.review_tsv(session, requester=requester, pool_id=pool.id)
    lines = text.splitlines()
    assert lines[0].split("\t") == review.TSV_COLUMNS
    assert len(lines) == 5

    def rows(verdict_for):
        return [
            "\t".join(line.split("\t")[:5] + verdict_for(int(line.split("\t")[0])))
            for line in lines[1:]
        ]

    # b's rejection has no comment (rows 4 and 5), and a foreign id (row 6)
    bad = rows(lambda i: ["-", ""] if i == idb else ["+", ""]) + ["99999\t\t\t\t\t+\t"]
    bad = "\n".join([lines[0], *bad])
    with pytest.raises(UploadRejected) as caught:
        review.apply_review_file(session, requester=requester, pool_id=pool.id, data=bad.encode())
    assert "row 4" in caught.value.message and "row 6" in caught.value.message
    session.expire_all()
    assert {session.get(Assignment, i).status for i in (ida, idb)} == {"submitted"}
    good = "\n".join([lines[0], *rows(lambda i: ["-", "wrong label"] if i == idb else ["+", ""])])
    counts = review.apply_review_file(
        session, requester=requester, pool_id=pool.id, data=good.encode()
    )
    assert counts == {"accepted": 1, "rejected": 1, "unchanged": 0}
    assert _balances(session, a, b) == [5, 0]


def test_acceptance_rate_and_reject_all_rules(session, requester, labeler):
    rules = [
        ban_rule(
            {"type": "ACCEPTANCE_RATE", "parameters": {"history_size": 5}},
            [("total_assignments_count", "GTE", 2), ("rejected_assignments_rate", "GT", 50)],
        ),
        rule(
            {
                "type": "ASSIGNMENT_SUBMIT_TIME",
                "parameters": {"fast_submit_threshold_seconds": 10, "history_size": 3},
            },
            [("fast_submitted_count", "GTE", 3)],
            {"type": "REJECT_ALL_ASSIGNMENTS", "parameters": {"public_comment": "Too fast"}},
        ),
    ]
    pool, tasks = _review_pool(session, requester, rules)
    ids = [submit_suite(pool, labeler, [(tasks[i], "cat")], duration=60) for i in range(2)]
    review.reject_assignment(session, requester=requester, assignment_id=ids[0], comment="no")
    assert bans_of(session, labeler) == []
    review.reject_assignment(session, requester=requester, assignment_id=ids[1], comment="no")
    assert len(bans_of(session, labeler)) == 1
    other = make_labeler(session)
    fast = [submit_suite(pool, other, [(tasks[i], "dog")], duration=2) for i in range(2, 5)]
    session.expire_all()
    statuses = [session.get(Assignment, i) for i in fast]
    assert [(a.status, a.review_comment) for a in statuses] == [("rejected", "Too fast")] * 3


def test_bonus_moves_money_through_the_ledger(session, requester, labeler):
    pool = make_pool(session, requester, overlap=1, general_per_suite=1, control_per_suite=0)
    tasks = add_tasks(session, pool, general=2)
    open_pool(session, requester, pool, budget_cents=500)
    stranger = make_labeler(session)
    submit_suite(pool, labeler, [(tasks[0], "cat")])
    ledger.top_up(session, user=requester, amount_cents=1000)
    before = _balances(session, requester, labeler)
    with pytest.raises(ValidationFailed):
        bonuses.grant_bonus(
            session, requester=requester, labeler_id=stranger.id, amount_cents=100, message="hi"
        )
    with pytest.raises(ValidationFailed):
        bonuses.grant_bonus(
            session, requester=requester, labeler_id=labeler.id, amount_cents=10001, message="hi"
        )
    bonus = bonuses.grant_bonus(
        session, requester=requester, labeler_id=labeler.id, amount_cents=250, message="Great work"
    )
    assert bonus.amount_cents == 250 and bonus.message == "Great work"
    after = _balances(session, requester, labeler)
    assert [a - b for a, b in zip(after, before, strict=True)] == [-250, 250]
    assert [b.id for b in bonuses.list_bonuses(session, requester=requester)] == [bonus.id]
    assert ledger_total(session) == 0


def test_periodic_step_auto_accepts_overdue_suites(session, requester, labeler):
    from app.db.engine import session_scope
    from workers.jobs.review import auto_accept_reviews

    pool, tasks = _review_pool(session, requester)
    due = submit_suite(pool, labeler, [(tasks[0], "cat")])
    fresh = submit_suite(pool, labeler, [(tasks[1], "cat")])
    with session_scope() as s:  # the first suite was submitted four days ago
        row = s.get(Assignment, due)
        row.submitted_at = utcnow() - timedelta(days=4)
        s.add(row)
        s.commit()
    assert auto_accept_reviews() == 1
    session.expire_all()
    assert [session.get(Assignment, i).status for i in (due, fresh)] == ["accepted", "submitted"]
