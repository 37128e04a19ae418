"""Dynamic overlap: a task below min_confidence gets one more slot (up to max_overlap),
a confident one does not; the budget reserves the worst case; concurrency keeps the bound."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func
from sqlmodel import select

from aggregation.incremental import accuracy, answer_weight, confidence
from app.db.models import Answer, Pool, PoolStatus, Task, TaskKind
from app.errors import ValidationFailed
from app.services.labeling.assignments import (
    NoSuiteAvailable,
    assign_next_suite,
    submit_assignment,
)
from app.services.money import ledger
from app.services.projects import pools
from app.services.quality.skills import create_skill, set_skill_value
from tests.builders.concurrency import in_own_session, run_together
from tests.builders.pools import add_tasks, make_pool, open_pool
from tests.builders.users import make_labeler


def _skilled(session, skill, value):
    labeler = make_labeler(session)
    set_skill_value(session, skill_id=skill.id, user_id=labeler.id, value=value)
    session.commit()
    return labeler


def _answer(session, labeler, pool, value):
    view = assign_next_suite(session, labeler=labeler, pool_id=pool.id)
    submit_assignment(
        session,
        labeler=labeler,
        assignment_id=view.assignment_id,
        answers={t.position: value for t in view.tasks},
        by_position=True,
    )
    return view


@pytest.fixture
def skill(session, requester):
    skill = create_skill(session, requester=requester, name="Accuracy")
    session.commit()
    return skill


def _dynamic_pool(session, requester, skill, **fields):
    fields = {
        "overlap": 1,
        "max_overlap": 3,
        "min_confidence": 0.8,
        "general_per_suite": 1,
        "control_per_suite": 0,
        "answer_weight_skill_id": skill.id,
        **fields,
    }
    pool = make_pool(session, requester, **fields)
    [task] = add_tasks(session, pool, general=1)
    return open_pool(session, requester, pool), task


def test_confidence_is_tolokas_aggregation_by_skill():
    # the docs' example: skills 70 and 90 both answer OK (of three options) → 97.7 %
    options = ["ok", "bad", "unsure"]
    scores = {"ok": answer_weight(0.7, 3) + answer_weight(0.9, 3)}
    assert round(confidence(scores, options), 3) == 0.977
    assert accuracy(0, 0) == 0.5
    assert answer_weight(0.2, 3) == 0  # worse than chance weighs nothing


def test_a_task_below_min_confidence_gets_one_more_slot(session, requester, skill):
    pool, task = _dynamic_pool(session, requester, skill)
    _answer(session, _skilled(session, skill, 60), pool, "cat")  # confidence 0.6 < 0.8
    session.expire_all()
    task = session.get(Task, task.id)
    assert task.overlap == 2
    assert task.confidence == pytest.approx(0.6)
    assert session.get(Pool, pool.id).status == PoolStatus.OPEN
    second = make_labeler(session)
    view = assign_next_suite(session, labeler=second, pool_id=pool.id)
    assert [t.task_id for t in view.tasks] == [task.id]


def test_a_task_above_min_confidence_gets_no_slot_and_the_pool_closes(session, requester, skill):
    pool, task = _dynamic_pool(session, requester, skill)
    _answer(session, _skilled(session, skill, 95), pool, "cat")  # confidence 0.95
    session.expire_all()
    assert session.get(Task, task.id).overlap == 1
    pool = session.get(Pool, pool.id)
    assert pool.status == PoolStatus.CLOSED and pool.close_reason == "COMPLETED"
    with pytest.raises(NoSuiteAvailable):
        assign_next_suite(session, labeler=make_labeler(session), pool_id=pool.id)


def test_a_disputed_task_stops_at_max_overlap(session, requester, skill):
    pool, task = _dynamic_pool(session, requester, skill)
    for value in ("cat", "dog", "bird"):
        _answer(session, _skilled(session, skill, 60), pool, value)
    session.expire_all()
    assert session.get(Task, task.id).overlap == 3
    assert session.get(Task, task.id).submitted_count == 3
    assert session.get(Pool, pool.id).status == PoolStatus.CLOSED


def test_budget_reserves_max_overlap_and_close_releases_the_rest(session, requester, skill):
    pool = make_pool(
        session, requester, overlap=1, max_overlap=4, min_confidence=0.5,
        general_per_suite=1, control_per_suite=0, reward_cents=10,
        answer_weight_skill_id=skill.id,
    )  # fmt: skip
    add_tasks(session, pool, general=3)
    review = pools.review_budget(session, requester=requester, pool_id=pool.id)
    assert review.answers == 12 and review.suites == 12
    ledger.top_up(session, user=requester, amount_cents=review.to_reserve_cents)
    pool = pools.launch_pool(session, requester=requester, pool_id=pool.id)
    reserved = ledger.get_pool_reserved(session, pool=pool)
    assert reserved == review.total_cents
    for _ in range(3):  # one confident answer per task: each closes after one answer
        _answer(session, _skilled(session, skill, 95), pool, "cat")
    session.expire_all()
    pool = session.get(Pool, pool.id)
    assert pool.status == PoolStatus.CLOSED
    assert ledger.get_pool_reserved(session, pool=pool) == 0
    paid = 3 * (10 + ledger.fee_cents(10, pool.fee_percent))
    assert ledger.get_pool_spent(session, pool=pool) == paid


def test_settings_are_validated(session, requester, skill):
    with pytest.raises(ValidationFailed) as exc:
        make_pool(session, requester, overlap=3, max_overlap=2, min_confidence=0.8)
    assert "at least the overlap" in exc.value.errors["max_overlap"]
    with pytest.raises(ValidationFailed) as exc:
        make_pool(session, requester, overlap=1, max_overlap=3, min_confidence=1.5)
    assert "between 0 and 1" in exc.value.errors["min_confidence"]
    with pytest.raises(ValidationFailed) as exc:
        make_pool(session, requester, overlap=1, max_overlap=3)
    assert "min_confidence" in exc.value.errors


def test_a_model_wrong_on_every_control_task_closes_no_task(session, requester, skill):
    from tests.builders.models import make_trained_model

    model = make_trained_model(session, requester, published_name="digits", published_at=None)
    model.published_at = model.finished_at
    session.add(model)
    session.commit()
    results = {}
    for right in (0, 4):  # wrong on all four control tasks, then right on all four
        pool, task = _dynamic_pool(session, requester, skill, model_id=model.id)
        pool.model_control_answers, pool.model_control_correct = 4, right
        session.add(pool)
        task.model_answer = "cat"
        session.add(task)
        session.commit()
        _answer(session, _skilled(session, skill, 60), pool, "cat")  # agrees with the model
        session.expire_all()
        results[right] = (session.get(Task, task.id).overlap, session.get(Pool, pool.id).status)
    assert results[0] == (2, PoolStatus.OPEN)  # the wrong model adds nothing: one more slot
    assert results[4] == (1, PoolStatus.CLOSED)  # a good model + one agreeing person close it


def test_no_task_exceeds_max_overlap_under_concurrent_submits(session, requester):
    """Ten labelers take and submit at once until the pool runs dry; nobody is confident
    enough (no control history), so every task must end with exactly max_overlap answers:
    never more, no slot lost, none left open."""
    pool = make_pool(
        session, requester, overlap=1, max_overlap=3, min_confidence=0.99,
        general_per_suite=2, control_per_suite=0,
    )  # fmt: skip
    tasks = add_tasks(session, pool, general=8)
    pool = open_pool(session, requester, pool)
    labelers = [make_labeler(session) for _ in range(10)]

    def pool_closed() -> bool:
        return in_own_session(lambda s: s.get(Pool, pool.id).status) == PoolStatus.CLOSED

    def work(i):
        # a slot can open after a labeler was told there is none (another submit gave a
        # task one more), so a labeler keeps asking until the pool closes
        done = 0
        for _ in range(300):
            result = in_own_session(
                lambda s: _answer(s, labelers[i], s.get(Pool, pool.id), ["cat", "dog"][i % 2])
            )
            if isinstance(result, Exception):
                assert isinstance(result, NoSuiteAvailable), result
                if pool_closed():
                    break
                time.sleep(0.01)
                continue
            done += 1
        return done

    run_together(len(labelers), work)
    session.expire_all()
    counts = dict(
        session.exec(select(Answer.task_id, func.count(Answer.id)).group_by(Answer.task_id)).all()
    )
    assert counts == {task.id: 3 for task in tasks}
    for task in tasks:
        row = session.get(Task, task.id)
        assert row.kind == TaskKind.GENERAL
        assert row.submitted_count == row.taken_count == row.overlap == 3
    assert session.get(Pool, pool.id).status == PoolStatus.CLOSED


def test_suites_start_with_the_least_certain_tasks(session, requester, skill):
    """Uncertainty sampling: a task no one (and no model) has answered comes first, then
    the least confident; a near-certain preliminary answer goes last."""
    from app.services.projects import uploads
    from app.services.projects.upload_formats import TaskInput

    pool = make_pool(
        session, requester, overlap=1, max_overlap=3, min_confidence=0.99,
        general_per_suite=1, control_per_suite=0, answer_weight_skill_id=skill.id,
    )  # fmt: skip

    def baseline(weight):
        return [{"output_values": {"result": "cat"}, "confidence_weight": weight}]

    sure, unsure, unknown = uploads.add_tasks(
        session, requester=requester, pool_id=pool.id,
        items=[
            TaskInput(image="https://img.example/sure.png", baseline_solutions=baseline(0.95)),
            TaskInput(image="https://img.example/unsure.png", baseline_solutions=baseline(0.5)),
            TaskInput(image="https://img.example/unknown.png"),
        ],
    )  # fmt: skip
    pool = open_pool(session, requester, pool)
    order = []
    for _ in range(3):
        view = _answer(session, _skilled(session, skill, 90), pool, "cat")
        order += [t.task_id for t in view.tasks]
    # after one answer each: unknown 0.90, unsure 0.95 (with its baseline), sure 0.95 untouched
    assert order == [unknown.id, unsure.id, unknown.id]
    session.expire_all()
    assert session.get(Task, sure.id).submitted_count == 0


def test_an_excluded_answer_no_longer_weighs(session, requester, skill):
    """A banned or rejected labeler's answer gives its slot back and leaves the votes."""
    from app.services.quality.overlap import give_back

    pool, task = _dynamic_pool(session, requester, skill)
    _answer(session, _skilled(session, skill, 60), pool, "dog")  # 0.6: one more slot
    spammer = _skilled(session, skill, 95)
    _answer(session, spammer, pool, "cat")
    session.expire_all()
    assert set(session.get(Task, task.id).votes) == {"dog", "cat"}
    [answer] = session.exec(select(Answer).where(Answer.labeler_id == spammer.id)).all()
    give_back(session, [answer])
    session.commit()
    session.expire_all()
    row = session.get(Task, task.id)
    assert set(row.votes) == {"dog"} and row.confidence == pytest.approx(0.6)
    assert row.submitted_count == 1 and row.taken_count == 1 and row.overlap == 2
