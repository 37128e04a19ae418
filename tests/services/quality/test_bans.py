"""Bans: scopes, exclusion of a banned labeler's answers (automatic in an open pool, an
explicit priced choice in a finished one), restored on unban, files."""

from __future__ import annotations

import pytest
from sqlmodel import select

from app.db.models import Answer, Pool, Task
from app.errors import Conflict, LabelerBanned, UploadRejected, ValidationFailed
from app.services.money import ledger
from app.services.projects.pool_state import mark_closed
from app.services.quality import (
    active_ban_for,
    ban_files,
    banned_answers,
    bans,
    ensure_not_banned,
)
from tests.builders.pools import add_tasks, make_pool, make_project, open_pool
from tests.builders.users import make_labeler, make_requester

from .helpers import bans_of, rule, submit_suite


def _ban(session, requester, labeler, scope, pool, **kw):
    return bans.ban_labeler(
        session,
        requester=requester,
        labeler_id=labeler.id,
        scope=scope,
        pool_id=pool.id,
        duration=2,
        duration_unit="HOURS",
        private_comment="spam",
        public_comment="Please read the instructions.",
        **kw,
    )


@pytest.mark.parametrize(
    ("scope", "blocked"),
    [("POOL", {"p1"}), ("PROJECT", {"p1", "p2"}), ("ALL_PROJECTS", {"p1", "p2", "p3"})],
)
def test_ban_scopes(session, requester, labeler, scope, blocked):
    project = make_project(session, requester)
    pools = {
        "p1": make_pool(session, requester, project),
        "p2": make_pool(session, requester, project),
        "p3": make_pool(session, requester),
        "foreign": make_pool(session, make_requester(session)),
    }
    _ban(session, requester, labeler, scope, pools["p1"])
    hit = {
        name
        for name, pool in pools.items()
        if active_ban_for(session, labeler_id=labeler.id, pool=pool)
    }
    assert hit == blocked


def test_banned_labeler_is_refused_with_the_public_reason(session, requester, labeler):
    pool = make_pool(session, requester)
    _ban(session, requester, labeler, "PROJECT", pool)
    with pytest.raises(LabelerBanned) as caught:
        ensure_not_banned(session, labeler_id=labeler.id, pool=pool)
    assert "Please read the instructions." in caught.value.message
    assert "spam" not in caught.value.message  # the private reason stays private


def test_unban_and_validation(session, requester, labeler):
    pool = make_pool(session, requester)
    with pytest.raises(ValidationFailed):
        bans.ban_labeler(
            session,
            requester=requester,
            labeler_id=labeler.id,
            scope="POOL",
            pool_id=pool.id,
            duration=1,
            private_comment="  ",
        )
    ban = _ban(session, requester, labeler, "POOL", pool)
    other = make_requester(session)
    with pytest.raises(Exception) as caught:
        bans.lift_ban(session, requester=other, ban_id=ban.id)
    assert caught.value.__class__.__name__ == "NotFound"
    assert bans.unban_labeler(session, requester=requester, labeler_id=labeler.id) == 1
    assert active_ban_for(session, labeler_id=labeler.id, pool=pool) is None


def _completed_pool(session, requester, **fields):
    pool = make_pool(
        session, requester, overlap=2, general_per_suite=2, control_per_suite=0, **fields
    )
    add_tasks(session, pool, general=2)
    open_pool(session, requester, pool)
    session.expire_all()
    tasks = list(session.exec(select(Task).where(Task.pool_id == pool.id).order_by(Task.id)))
    bad, good = make_labeler(session), make_labeler(session)
    for who in (bad, good):
        submit_suite(pool, who, [(tasks[0], "cat"), (tasks[1], "dog")])
    pool = session.get(Pool, pool.id)
    mark_closed(session, pool=pool, reason="COMPLETED")
    session.commit()
    return pool, tasks, bad


def _counters(session, pool):
    session.expire_all()
    tasks = session.exec(select(Task).where(Task.pool_id == pool.id).order_by(Task.id))
    return [(t.taken_count, t.submitted_count) for t in tasks]


def _excluded(session, pool):
    session.expire_all()
    rows = session.exec(select(Answer.labeler_id, Answer.excluded).where(Answer.pool_id == pool.id))
    return {(lid, ex) for lid, ex in rows}


def test_a_ban_after_a_pool_completed_changes_nothing_there(session, requester):
    pool, _tasks, bad = _completed_pool(session, requester)
    balance = ledger.get_balance(session, user=requester)
    _ban(session, requester, bad, "PROJECT", pool)
    assert all(not excluded for _, excluded in _excluded(session, pool))
    assert _counters(session, pool) == [(2, 2), (2, 2)]
    closed = session.get(Pool, pool.id)
    assert closed.status == "closed" and closed.close_reason == "COMPLETED"
    assert ledger.get_balance(session, user=requester) == balance
    # the requester is told what leaving the answers in costs to change
    (pending,) = banned_answers.finished_pools_to_review(
        session, requester_id=requester.id, labeler_id=bad.id
    )
    assert (pending.pool.id, pending.answers, pending.slots) == (pool.id, 2, 2)
    assert pending.cost_cents == pool.reward_cents + ledger.fee_cents(
        pool.reward_cents, pool.fee_percent
    )
    assert pending.reopens


def test_excluding_a_banned_labelers_answers_is_explicit_and_priced(session, requester):
    pool, tasks, bad = _completed_pool(session, requester)
    ban = _ban(session, requester, bad, "PROJECT", pool)
    preview = banned_answers.preview_exclusion(
        session, requester_id=requester.id, pool_id=pool.id, labeler_id=bad.id
    )
    with pytest.raises(banned_answers.CostChanged):
        banned_answers.exclude_answers(
            session,
            requester_id=requester.id,
            pool_id=pool.id,
            labeler_id=bad.id,
            confirmed_cents=preview.cost_cents - 1,
        )
    assert all(not excluded for _, excluded in _excluded(session, pool))
    banned_answers.exclude_answers(
        session,
        requester_id=requester.id,
        pool_id=pool.id,
        labeler_id=bad.id,
        confirmed_cents=preview.cost_cents,
    )
    assert _excluded(session, pool) == {(bad.id, True), (_other(session, pool, bad), False)}
    assert _counters(session, pool) == [(1, 1), (1, 1)]
    reopened = session.get(Pool, pool.id)
    assert reopened.status == "open" and reopened.close_reason is None
    assert ledger.get_pool_reserved(session, pool=reopened) >= preview.cost_cents
    # unbanning counts the answers again (their slots are still free): done again
    bans.lift_ban(session, requester=requester, ban_id=ban.id)
    assert all(not excluded for _, excluded in _excluded(session, pool))
    assert _counters(session, pool) == [(2, 2), (2, 2)]
    again = session.get(Pool, pool.id)
    assert again.status == "closed" and again.close_reason == "COMPLETED"


def test_only_a_banned_labelers_answers_can_be_excluded(session, requester):
    pool, _tasks, bad = _completed_pool(session, requester)
    with pytest.raises(Conflict):
        banned_answers.exclude_answers(
            session,
            requester_id=requester.id,
            pool_id=pool.id,
            labeler_id=bad.id,
            confirmed_cents=0,
        )


def test_in_an_open_pool_a_ban_gives_slots_back_and_unban_restores_them(session, requester):
    pool = make_pool(session, requester, overlap=2, general_per_suite=2, control_per_suite=0)
    add_tasks(session, pool, general=4)
    open_pool(session, requester, pool)
    session.expire_all()
    tasks = list(session.exec(select(Task).where(Task.pool_id == pool.id).order_by(Task.id)))
    bad = make_labeler(session)
    submit_suite(pool, bad, [(tasks[0], "cat"), (tasks[1], "dog")])
    ban = _ban(session, requester, bad, "POOL", pool)
    assert _excluded(session, pool) == {(bad.id, True)}
    assert _counters(session, pool)[:2] == [(0, 0), (0, 0)]
    bans.unban_labeler(session, requester=requester, labeler_id=bad.id)
    assert _excluded(session, pool) == {(bad.id, False)}
    assert _counters(session, pool)[:2] == [(1, 1), (1, 1)]
    assert session.get(Pool, pool.id).status == "open"
    assert bans.get_ban(session, requester=requester, ban_id=ban.id).lifted_at is not None


def _other(session, pool, bad):
    return next(
        lid
        for lid in session.exec(select(Answer.labeler_id).where(Answer.pool_id == pool.id))
        if lid != bad.id
    )


def test_switch_off_keeps_answers_and_runs_the_reissue_rule(session, requester):
    reissue = rule(
        {"type": "USERS_ASSESSMENT"},
        [("pool_access_revoked_reason", "EQ", "RESTRICTION")],
        {"type": "CHANGE_OVERLAP", "parameters": {"delta": 1, "open_pool": True}},
    )
    pool, tasks, bad = _completed_pool(
        session, requester, exclude_banned_answers=False, quality_rules=[reissue]
    )
    _ban(session, requester, bad, "POOL", pool)
    session.expire_all()
    assert not any(session.exec(select(Answer.excluded).where(Answer.pool_id == pool.id)).all())
    assert [session.get(Task, t.id).overlap for t in tasks] == [3, 3]
    assert session.get(Pool, pool.id).status == "open"


def test_bulk_ban_from_file_is_all_or_nothing(session, requester):
    pool = make_pool(session, requester)
    a, b = make_labeler(session), make_labeler(session)
    bad_file = f"worker_id\tnote\n{a.id}\tx\nabc\ty\n999999\tz\n".encode()
    with pytest.raises(UploadRejected) as caught:
        ban_files.ban_labelers_from_file(
            session,
            requester=requester,
            data=bad_file,
            scope="PROJECT",
            pool_id=pool.id,
            duration=1,
            private_comment="bots",
        )
    assert caught.value.row == 3 and "row 4" in caught.value.message
    assert bans_of(session, a) == []
    made = ban_files.ban_labelers_from_file(
        session,
        requester=requester,
        data=f"{a.id}\n{b.id}\n\n".encode(),
        scope="PROJECT",
        pool_id=pool.id,
        duration=1,
        private_comment="bots",
    )
    assert {m.labeler_id for m in made} == {a.id, b.id}
