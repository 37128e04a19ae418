"""Bans: scopes, exclusion of a banned labeler's answers with overlap given back, files."""

from __future__ import annotations

import pytest
from sqlmodel import select

from app.db.models import Answer, Pool, Task
from app.errors import LabelerBanned, UploadRejected, ValidationFailed
from app.services.projects.pool_state import mark_closed
from app.services.quality import active_ban_for, ban_files, bans, ensure_not_banned
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


def test_ban_excludes_answers_and_gives_overlap_back_reopening_the_pool(session, requester):
    pool, tasks, bad = _completed_pool(session, requester)
    assert pool.status == "closed"
    _ban(session, requester, bad, "PROJECT", pool)
    session.expire_all()
    excluded = session.exec(
        select(Answer.labeler_id, Answer.excluded).where(Answer.pool_id == pool.id)
    ).all()
    assert {(lid == bad.id, ex) for lid, ex in excluded} == {(True, True), (False, False)}
    assert [
        (t.taken_count, t.submitted_count)
        for t in session.exec(select(Task).where(Task.pool_id == pool.id).order_by(Task.id))
    ] == [(1, 1), (1, 1)]
    reopened = session.get(Pool, pool.id)
    assert reopened.status == "open" and reopened.close_reason is None
    # a second ban gives nothing back twice
    _ban(session, requester, bad, "POOL", pool)
    session.expire_all()
    assert session.get(Task, tasks[0].id).taken_count == 1


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
