"""Concurrency: real threads, each with its own connection (PostgreSQL row locks with
SKIP LOCKED; SQLite serialises writers with BEGIN IMMEDIATE)."""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import text
from sqlmodel import select

from app.db.engine import new_session
from app.db.models import Answer, Assignment, AssignmentStatus, LedgerEntry, LedgerKind, Pool, Task
from app.services.labeling.assignments import NoSuiteAvailable, assign_next_suite, submit_assignment
from app.services.money import ledger
from tests.builders.concurrency import in_own_session, run_together
from tests.builders.pools import add_tasks, make_pool, open_pool
from tests.builders.users import make_labeler


def test_labelers_racing_for_the_last_slot_exactly_one_gets_it(session, requester):
    pool = make_pool(session, requester, overlap=1, general_per_suite=1, control_per_suite=0)
    [task] = add_tasks(session, pool, general=1)
    pool = open_pool(session, requester, pool)
    labelers = [make_labeler(session) for _ in range(8)]

    def take(i):
        return in_own_session(lambda s: assign_next_suite(s, labeler=labelers[i], pool_id=pool.id))

    results = run_together(len(labelers), take)
    winners = [r for r in results if not isinstance(r, Exception)]
    assert len(winners) == 1, results
    assert all(isinstance(r, NoSuiteAvailable) for r in results if r not in winners)
    session.expire_all()
    assert session.get(Task, task.id).taken_count == 1
    assert len(session.exec(select(Assignment)).all()) == 1


def test_concurrent_double_submit_pays_once(session, requester):
    pool = make_pool(session, requester, reward_cents=9, general_per_suite=3)
    add_tasks(session, pool, general=6, control=["cat"])
    pool = open_pool(session, requester, pool)
    labeler = make_labeler(session)
    view = assign_next_suite(session, labeler=labeler, pool_id=pool.id)
    answers = {t.position: "dog" for t in view.tasks}

    def submit(_i):
        return in_own_session(
            lambda s: submit_assignment(
                s,
                labeler=labeler,
                assignment_id=view.assignment_id,
                answers=answers,
                by_position=True,
            )
        )

    results = run_together(4, submit)
    assert all(not isinstance(r, Exception) for r in results), results
    assert {r.status for r in results} == {AssignmentStatus.ACCEPTED}
    assert sorted(r.repeated for r in results) == [False, True, True, True]
    stored = session.exec(select(Answer).where(Answer.assignment_id == view.assignment_id)).all()
    assert len(stored) == 4
    earnings = session.exec(
        select(LedgerEntry).where(
            LedgerEntry.kind == LedgerKind.EARNING,
            LedgerEntry.assignment_id == view.assignment_id,
        )
    ).all()
    assert len(earnings) == 1
    assert ledger.get_balance(session, user=labeler) == 9


def test_many_labelers_at_once_never_exceed_overlap(session, requester):
    pool = make_pool(session, requester, overlap=2, general_per_suite=3, control_per_suite=1)
    add_tasks(session, pool, general=15, control=["cat", "dog"])
    pool = open_pool(session, requester, pool)
    labelers = [make_labeler(session) for _ in range(6)]

    def work(i):
        done = 0
        for _ in range(15):
            view = in_own_session(
                lambda s: assign_next_suite(s, labeler=labelers[i], pool_id=pool.id)
            )
            if isinstance(view, Exception):
                break
            answers = {t.position: "cat" for t in view.tasks}
            result = in_own_session(
                lambda s, v=view, a=answers: submit_assignment(
                    s,
                    labeler=labelers[i],
                    assignment_id=v.assignment_id,
                    answers=a,
                    by_position=True,
                )
            )
            assert not isinstance(result, Exception), result
            done += 1
        return done

    run_together(len(labelers), work)
    session.expire_all()
    general = {t.id: t for t in session.exec(select(Task).where(Task.kind == "general"))}
    counts = Counter(a.task_id for a in session.exec(select(Answer)) if a.task_id in general)
    assert all(counts[tid] == 2 for tid in general), counts
    assert all(t.taken_count == 2 for t in general.values())
    assert session.get(Pool, pool.id).status == "closed"


def test_two_takes_by_one_labeler_at_once_give_one_suite(session, requester):
    """A double click: both requests queue on the labeler's lock; the second must see the
    suite the first one made, not a snapshot from before it."""
    pool = make_pool(session, requester, general_per_suite=2, control_per_suite=0)
    add_tasks(session, pool, general=10)
    pool = open_pool(session, requester, pool)
    labeler = make_labeler(session)
    blocker = new_session(write=True)  # holds the labeler's lock (the database's, on SQLite)
    lock = "SELECT id FROM user_account WHERE id = :id"
    if blocker.get_bind().dialect.name == "postgresql":
        lock += " FOR NO KEY UPDATE"
    else:
        blocker.connection()  # BEGIN IMMEDIATE
    blocker.execute(text(lock), {"id": labeler.id})

    def take(_i):
        return in_own_session(lambda s: assign_next_suite(s, labeler=labeler, pool_id=pool.id))

    with ThreadPoolExecutor(max_workers=2) as executor:
        futures = [executor.submit(take, i) for i in range(2)]
        time.sleep(0.5)  # both are waiting on the lock now
        blocker.commit()
        blocker.close()
        views = [f.result(timeout=30) for f in futures]
    assert all(not isinstance(v, Exception) for v in views), views
    assert views[0].assignment_id == views[1].assignment_id
    session.expire_all()
    assert len(session.exec(select(Assignment)).all()) == 1
    assert sum(t.taken_count for t in session.exec(select(Task))) == 2


def test_labelers_racing_for_composed_suites_never_overfill_them(session, requester):
    from app.services.projects.task_suites import SuiteInput, create_task_suites
    from app.services.projects.upload_formats import TaskInput

    pool = make_pool(session, requester, overlap=1, general_per_suite=2, control_per_suite=0)
    suites = [
        SuiteInput(
            overlap=2,
            tasks=[TaskInput(image=f"https://img.example/s{i}-{j}.png") for j in range(2)],
        )
        for i in range(2)
    ]
    create_task_suites(session, requester=requester, pool_id=pool.id, suites=suites)
    pool = open_pool(session, requester, pool)
    labelers = [make_labeler(session) for _ in range(8)]

    def take(i):
        return in_own_session(lambda s: assign_next_suite(s, labeler=labelers[i], pool_id=pool.id))

    results = run_together(len(labelers), take)
    winners = [r for r in results if not isinstance(r, Exception)]
    assert len(winners) == 4, results  # two suites, each twice
    assert all(isinstance(r, NoSuiteAvailable) for r in results if r not in winners)
    assert all(len(w.tasks) == 2 for w in winners)
    session.expire_all()
    counts = session.exec(select(Task.taken_count).where(Task.pool_id == pool.id)).all()
    assert counts == [2, 2, 2, 2]
