"""Marking control tasks, "save and go to next", and the answer distribution warning."""

from __future__ import annotations

import pytest

from app.db.models import TaskKind
from app.errors import Conflict, NotFound, ValidationFailed
from app.services.projects import control_tasks
from tests.builders.pools import add_tasks, make_pool
from tests.builders.users import make_requester


def test_mark_and_unmark_with_save_and_next(session, requester):
    pool = make_pool(session, requester)
    first, second, third = add_tasks(session, pool, general=3)
    marked = control_tasks.mark_control(
        session, requester=requester, task_id=first.id, answer="dog"
    )
    assert (marked.kind, marked.known_answer) == (TaskKind.CONTROL, "dog")
    following = control_tasks.next_task(session, requester=requester, pool_id=pool.id, after=first)
    assert following.id == second.id
    control_tasks.mark_control(session, requester=requester, task_id=second.id, answer="cat")
    assert (
        control_tasks.next_task(session, requester=requester, pool_id=pool.id, after=first).id
        == third.id
    )
    unmarked = control_tasks.unmark_control(session, requester=requester, task_id=first.id)
    assert (unmarked.kind, unmarked.known_answer) == (TaskKind.GENERAL, None)
    tasks, total = control_tasks.list_tasks(
        session, requester=requester, pool_id=pool.id, kind=TaskKind.CONTROL
    )
    assert total == 1 and tasks[0].id == second.id


def test_answer_must_be_an_option_and_task_must_be_ours(session, requester):
    pool = make_pool(session, requester)
    (task,) = add_tasks(session, pool, general=1)
    with pytest.raises(ValidationFailed):
        control_tasks.mark_control(session, requester=requester, task_id=task.id, answer="cow")
    with pytest.raises(NotFound):
        control_tasks.mark_control(
            session, requester=make_requester(session), task_id=task.id, answer="cat"
        )


def test_task_handed_out_cannot_change_kind(session, requester):
    pool = make_pool(session, requester)
    (task,) = add_tasks(session, pool, general=1)
    task.taken_count = 1
    session.add(task)
    session.commit()
    with pytest.raises(Conflict):
        control_tasks.mark_control(session, requester=requester, task_id=task.id, answer="cat")


def test_distribution_by_option_warns_when_unbalanced(session, requester):
    pool = make_pool(session, requester)
    add_tasks(session, pool, general=20, control=["cat", "cat", "cat", "cat", "dog", "dog"])
    dist = control_tasks.control_distribution(session, requester=requester, pool_id=pool.id)
    assert [(o.value, n) for o, n in dist.rows] == [("cat", 4), ("dog", 2), ("bird", 0)]
    assert dist.chart[0] == ("Cat (cat)", 4)
    assert any("Unbalanced" in w and "Bird" in w for w in dist.warnings)
    assert dist.share == pytest.approx(6 / 26)


def test_balanced_distribution_has_no_imbalance_warning(session, requester):
    pool = make_pool(session, requester)
    add_tasks(session, pool, general=10, control=["cat", "dog", "bird"])
    dist = control_tasks.control_distribution(session, requester=requester, pool_id=pool.id)
    assert not any("Unbalanced" in w for w in dist.warnings)
