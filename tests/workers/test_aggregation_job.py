"""The aggregation job: figures, progress, idempotence and failure."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlmodel import select

from app.api.operations import operation_json
from app.db.models import AggregatedLabel, AggregationRun, Job, Pool, WorkerQuality
from app.services.aggregations import runs as svc
from tests.builders.answers import add_answers
from tests.builders.pools import add_tasks, make_pool, make_project
from tests.builders.users import make_labeler
from workers.jobs import aggregation as aggregation_job


@pytest.fixture
def answered_pool(session, requester):
    pool = make_pool(session, requester)
    tasks = add_tasks(session, pool, general=3, control=["cat"])
    people = [make_labeler(session) for _ in range(3)]
    add_answers(
        session,
        pool,
        {
            tasks[0].id: [(p, "cat") for p in people],
            tasks[1].id: [(people[0], "dog"), (people[1], "dog"), (people[2], "cat")],
            tasks[3].id: [(p, "cat") for p in people],
        },
    )
    return pool, tasks


def test_job_writes_labels_worker_quality_and_figures(session, requester, answered_pool):
    pool, tasks = answered_pool

    run = svc.start_aggregation(session, requester=requester, pool_id=pool.id)

    session.expire_all()
    run = session.get(AggregationRun, run.id)
    job = session.get(Job, run.job_id)
    assert (run.status, job.status, job.progress) == ("succeeded", "succeeded", 1.0)
    assert (run.task_count, run.unanswered_count, run.answer_count) == (3, 1, 9)
    assert 0.0 < run.mean_confidence <= 1.0
    assert run.started_at <= run.finished_at
    labels = session.exec(select(AggregatedLabel).where(AggregatedLabel.run_id == run.id)).all()
    assert sorted(label.task_id for label in labels) == [t.id for t in tasks[:3]]
    assert len(session.exec(select(WorkerQuality)).all()) == 3
    assert job.result["known_count"] == 1
    assert set(job.result["timings"]) == {"load_seconds", "fit_seconds", "write_seconds"}
    operation = operation_json(job)
    assert operation["type"] == "SOLUTION.AGGREGATE"
    assert operation["parameters"] == {"pool_id": f"{pool.id:010d}"}
    assert operation["details"]["task_count"] == 3


def test_running_the_job_again_replaces_its_rows(session, requester, answered_pool):
    pool, _ = answered_pool
    run = svc.start_aggregation(session, requester=requester, pool_id=pool.id)
    payload = {"run_id": run.id}

    aggregation_job.run_aggregation(run.job_id, payload, lambda *a, **k: None)

    session.expire_all()
    labels = session.exec(select(AggregatedLabel).where(AggregatedLabel.run_id == run.id)).all()
    assert len(labels) == 3
    assert len(session.exec(select(WorkerQuality)).all()) == 3


def test_a_failing_fit_marks_the_run_failed_with_its_message(
    session, requester, answered_pool, monkeypatch
):
    class Broken:
        def fit_matrix(self, *args, **kwargs):
            raise ValueError("the model diverged")

    monkeypatch.setattr(aggregation_job, "get_method", lambda name: Broken)
    pool, _ = answered_pool

    run = svc.start_aggregation(session, requester=requester, pool_id=pool.id)

    session.expire_all()
    run = session.get(AggregationRun, run.id)
    assert (run.status, run.error) == ("failed", "the model diverged")
    assert run.finished_at is not None
    assert session.get(Job, run.job_id).status == "failed"


def test_answers_outside_the_answer_options_are_ignored(session, requester):
    pool = make_pool(session, requester)
    (task,) = add_tasks(session, pool, general=1)
    people = [make_labeler(session) for _ in range(3)]
    add_answers(session, pool, {task.id: [(people[0], "cat"), (people[1], "zebra")]})
    add_answers(session, pool, {task.id: [(people[2], "zebra")]})

    run = svc.start_aggregation(session, requester=requester, pool_id=pool.id, method="mv")

    session.expire_all()
    label = session.exec(select(AggregatedLabel).where(AggregatedLabel.run_id == run.id)).one()
    assert (label.value, label.answer_count) == ("cat", 1)


def test_option_values_with_quotes_and_backslashes_are_read_as_given(session, requester):
    # the labels are coded in the query that streams the answers (binary COPY on PostgreSQL)
    odd = ["it's", "back\\slash", "'); drop table answer; --"]
    pool = make_pool(session, requester, make_project(session, requester, options=odd))
    tasks = add_tasks(session, pool, general=3, control=[odd[0]])
    people = [make_labeler(session) for _ in range(3)]
    add_answers(
        session,
        pool,
        {task.id: [(p, odd[i % 3]) for p in people] for i, task in enumerate(tasks)},
    )

    run = svc.start_aggregation(session, requester=requester, pool_id=pool.id, method="ds")

    session.expire_all()
    run = session.get(AggregationRun, run.id)
    assert (run.status, run.answer_count) == ("succeeded", 12)
    labels = session.exec(select(AggregatedLabel).where(AggregatedLabel.run_id == run.id)).all()
    assert {label.task_id: label.value for label in labels} == {
        task.id: odd[i] for i, task in enumerate(tasks[:3])
    }
    assert session.get(Job, run.job_id).result["known_count"] == 1


def test_a_pool_nobody_answered_aggregates_to_unanswered_tasks(session, requester):
    pool = make_pool(session, requester)
    add_tasks(session, pool, general=2)

    run = svc.start_aggregation(session, requester=requester, pool_id=pool.id)

    session.expire_all()
    run = session.get(AggregationRun, run.id)
    assert (run.status, run.task_count, run.unanswered_count) == ("succeeded", 2, 2)
    assert run.mean_confidence is None


def test_progress_goes_from_loading_through_fitting_to_done(session, requester, answered_pool):
    pool, _ = answered_pool
    run = svc.start_aggregation(session, requester=requester, pool_id=pool.id)
    seen: list[tuple[float, str]] = []

    aggregation_job.run_aggregation(
        run.job_id, {"run_id": run.id}, lambda f, m="", **k: seen.append((f, m))
    )

    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any("EM iteration" in m for _, m in seen)
    assert seen[-1][1] == "Aggregated 2 of 3 tasks"


def test_labels_in_other_scripts_are_written_as_given(session, requester):
    # PostgreSQL writes the labels by binary COPY: the value's bytes as UTF-8
    options = ["chat noir é", "猫"]
    pool = make_pool(session, requester, make_project(session, requester, options=options))
    tasks = add_tasks(session, pool, general=2)
    people = [make_labeler(session) for _ in range(3)]
    add_answers(
        session,
        pool,
        {task.id: [(p, options[i]) for p in people] for i, task in enumerate(tasks)},
    )

    run = svc.start_aggregation(session, requester=requester, pool_id=pool.id, method="ds")

    session.expire_all()
    labels = session.exec(select(AggregatedLabel).where(AggregatedLabel.run_id == run.id)).all()
    assert {label.task_id: (label.value, label.answer_count) for label in labels} == {
        tasks[0].id: (options[0], 3),
        tasks[1].id: (options[1], 3),
    }
    assert all(0.0 < label.confidence <= 1.0 for label in labels)


def test_deleting_a_run_or_its_pool_deletes_its_labels(session, requester, answered_pool):
    pool, _ = answered_pool
    first = svc.start_aggregation(session, requester=requester, pool_id=pool.id).id
    second = svc.start_aggregation(session, requester=requester, pool_id=pool.id, method="ds").id
    pool_id = pool.id

    def labels_of(run_id: int) -> int:
        query = select(AggregatedLabel).where(AggregatedLabel.run_id == run_id)
        return len(session.exec(query).all())

    assert (labels_of(first), labels_of(second)) == (3, 3)
    session.execute(sa.delete(AggregationRun).where(AggregationRun.id == first))
    assert (labels_of(first), labels_of(second)) == (0, 3)

    session.execute(sa.delete(Pool).where(Pool.id == pool_id))
    session.expire_all()
    assert session.get(AggregationRun, second) is None
    assert labels_of(second) == 0
