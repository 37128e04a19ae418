"""Aggregation runs: which answers count, who may see what, and what the results hold."""

from __future__ import annotations

import csv
import io

import pytest
from PIL import Image
from sqlmodel import select

from aggregation import simulate_crowd
from app.db.models import AggregatedLabel, AggregationRun, Job, Task
from app.errors import Conflict, NotFound, ValidationFailed
from app.services.aggregations import runs as svc
from app.services.projects import uploads
from tests.builders.answers import add_answers, add_simulated_crowd
from tests.builders.pools import add_tasks, make_pool
from tests.builders.users import make_labeler, make_requester


def _labels(session, run) -> dict[int, AggregatedLabel]:
    session.expire_all()
    rows = session.exec(select(AggregatedLabel).where(AggregatedLabel.run_id == run.id)).all()
    return {row.task_id: row for row in rows}


def _run(session, requester, pool, **kwargs) -> AggregationRun:
    run = svc.start_aggregation(session, requester=requester, pool_id=pool.id, **kwargs)
    session.expire_all()
    return svc.get_run(session, requester=requester, run_id=run.id)


def _tsv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text), delimiter="\t"))


def test_dawid_skene_beats_majority_vote_on_a_crowd_with_spammers_and_adversaries(
    session, requester
):
    crowd = simulate_crowd(
        n_tasks=60, n_workers=10, n_labels=3, overlap=5, spammers=0.3, adversaries=0.2, seed=0
    )
    pool, tasks, _ = add_simulated_crowd(session, requester, crowd)
    truth = {tasks[key].id: label for key, label in crowd.truth.items()}
    accuracy = {}
    for method in ("mv", "ds"):
        run = _run(session, requester, pool, method=method)
        assert run.status == "succeeded"
        labels = _labels(session, run)
        accuracy[method] = sum(labels[t].value == truth[t] for t in truth) / len(truth)
    assert accuracy["ds"] >= 0.85
    assert accuracy["ds"] >= accuracy["mv"] + 0.1


def test_excluded_answers_and_rejected_suites_are_not_used(session, requester):
    pool = make_pool(session, requester)
    kept, only_rejected = add_tasks(session, pool, general=2)
    people = [make_labeler(session) for _ in range(6)]
    add_answers(session, pool, {kept.id: [(people[0], "cat"), (people[1], "cat")]})
    add_answers(
        session,
        pool,
        {kept.id: [(people[2], "dog"), (people[3], "dog")], only_rejected.id: [(people[2], "dog")]},
        status="rejected",
    )
    add_answers(session, pool, {kept.id: [(people[4], "dog"), (people[5], "dog")]}, excluded=True)

    run = _run(session, requester, pool, method="mv")

    labels = _labels(session, run)
    assert (labels[kept.id].value, labels[kept.id].confidence) == ("cat", 1.0)
    assert labels[kept.id].answer_count == 2
    assert labels[only_rejected.id].value is None
    assert (run.answer_count, run.unanswered_count) == (2, 1)


@pytest.mark.parametrize(("auto_accept", "expected"), [(True, "dog"), (False, "cat")])
def test_submitted_suites_count_only_when_the_pool_accepts_automatically(
    session, requester, auto_accept, expected
):
    pool = make_pool(session, requester, auto_accept=auto_accept)
    (task,) = add_tasks(session, pool, general=1)
    people = [make_labeler(session) for _ in range(3)]
    add_answers(session, pool, {task.id: [(people[0], "cat")]}, status="accepted")
    add_answers(
        session, pool, {task.id: [(people[1], "dog"), (people[2], "dog")]}, status="submitted"
    )
    add_answers(session, pool, {task.id: [(make_labeler(session), "bird")]}, status="active")

    run = _run(session, requester, pool, method="mv")

    assert _labels(session, run)[task.id].value == expected


def test_results_tsv_has_one_row_per_answered_general_task_and_lists_the_rest(session, requester):
    pool = make_pool(session, requester)
    tasks = add_tasks(session, pool, general=4, control=["dog"])
    general, control = tasks[:4], tasks[4]
    people = [make_labeler(session) for _ in range(3)]
    add_answers(
        session,
        pool,
        {
            general[0].id: [(p, "cat") for p in people],
            general[1].id: [(people[0], "dog"), (people[1], "dog"), (people[2], "cat")],
            general[2].id: [(people[0], "bird")],
            control.id: [(p, "dog") for p in people],
        },
    )

    run = _run(session, requester, pool, method="mv")
    rows = _tsv_rows(svc.build_results_tsv(session, run=run))

    assert rows[0] == ["INPUT:image", "OUTPUT:result", "CONFIDENCE:result"]
    assert [r[:2] for r in rows[1:]] == [
        [general[0].image, "cat"],
        [general[1].image, "dog"],
        [general[2].image, "bird"],
    ]
    assert all(0.0 <= float(r[2]) <= 1.0 for r in rows[1:])
    assert float(rows[2][2]) == pytest.approx(2 / 3, abs=1e-4)
    assert _tsv_rows(svc.build_unanswered_tsv(session, run=run)) == [
        ["INPUT:image"],
        [general[3].image],
    ]
    assert (run.task_count, run.unanswered_count) == (4, 1)
    assert run.mean_confidence == pytest.approx((1 + 2 / 3 + 1) / 3)
    histogram = dict(svc.confidence_histogram(session, run=run))
    assert histogram["0.9–1"] == 2 and histogram["0.6–0.7"] == 1


def test_another_requesters_pool_and_run_are_not_found(session, requester):
    pool = make_pool(session, requester)
    (task,) = add_tasks(session, pool, general=1)
    add_answers(session, pool, {task.id: [(make_labeler(session), "cat")]})
    run = _run(session, requester, pool)
    other = make_requester(session)

    with pytest.raises(NotFound):
        svc.start_aggregation(session, requester=other, pool_id=pool.id)
    with pytest.raises(NotFound):
        svc.list_runs(session, requester=other, pool_id=pool.id)
    with pytest.raises(NotFound):
        svc.get_run(session, requester=other, run_id=run.id)
    with pytest.raises(NotFound):
        svc.get_run_for_operation(session, requester=other, operation_id=str(run.job_id))
    other_pool = make_pool(session, requester)
    with pytest.raises(NotFound):
        svc.get_run(session, requester=requester, run_id=run.id, pool_id=other_pool.id)


def test_unknown_method_is_refused_and_nothing_is_created(session, requester):
    pool = make_pool(session, requester)
    add_tasks(session, pool, general=1)

    with pytest.raises(ValidationFailed) as caught:
        svc.start_aggregation(session, requester=requester, pool_id=pool.id, method="magic")

    assert "ds" in caught.value.errors["method"]
    assert session.exec(select(AggregationRun)).all() == []
    assert session.exec(select(Job)).all() == []


def test_a_pool_without_general_tasks_cannot_be_aggregated(session, requester):
    pool = make_pool(session, requester)
    add_tasks(session, pool, control=["cat"])

    with pytest.raises(Conflict, match="no general tasks"):
        svc.start_aggregation(session, requester=requester, pool_id=pool.id)


def test_labels_page_by_task_id_and_only_finished_runs_have_labels(session, requester):
    pool = make_pool(session, requester)
    tasks = add_tasks(session, pool, general=5)
    labeler = make_labeler(session)
    add_answers(session, pool, {t.id: [(labeler, "cat")] for t in tasks[:4]})
    run = _run(session, requester, pool)

    first, more = svc.page_labels(session, run=run, limit=3)
    rest, more_after = svc.page_labels(session, run=run, limit=3, task_id_gt=first[-1].task_id)

    assert [r.task_id for r in first + rest] == [t.id for t in tasks[:4]]
    assert (more, more_after) == (True, False)
    run.status = "running"
    with pytest.raises(Conflict, match="not finished"):
        svc.page_labels(session, run=run)


def test_worker_quality_shows_estimated_and_control_accuracy(session, requester):
    pool = make_pool(session, requester)
    tasks = add_tasks(session, pool, general=6, control=["cat", "dog"])
    good, also_good, careless = (make_labeler(session, name=n) for n in ("ann", "bob", "cy"))
    answers = {}
    for i, task in enumerate(tasks[:6]):
        truth = "cat" if i % 2 else "dog"
        wrong = "dog" if truth == "cat" else "cat"
        answers[task.id] = [(good, truth), (also_good, truth), (careless, wrong)]
    answers[tasks[6].id] = [(good, "cat"), (also_good, "cat"), (careless, "dog")]
    answers[tasks[7].id] = [(good, "dog"), (also_good, "dog"), (careless, "dog")]
    add_answers(session, pool, answers)

    run = _run(session, requester, pool)
    workers = {w.name: w for w in svc.list_worker_quality(session, run=run)}

    assert workers["ann"].accuracy > 0.9 > 0.3 > workers["cy"].accuracy
    assert (workers["cy"].control_correct, workers["cy"].control_answered) == (1, 2)
    assert workers["ann"].control_accuracy == 1.0
    assert workers["cy"].answer_count == 8
    cy = workers["cy"]
    row_cat = cy.matrix[cy.labels.index("cat")]
    assert row_cat[cy.labels.index("dog")] > 0.9  # answers "dog" when it is a cat


def _png(shade: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (shade, 20, 40)).save(buffer, "PNG")
    return buffer.getvalue()


def test_uploaded_images_are_named_by_their_file_names_with_the_stored_address_beside(
    session, requester, settings
):
    pool = make_pool(session, requester)
    uploads.submit_upload(
        session,
        requester=requester,
        pool_id=pool.id,
        kind="images",
        files=[("red_0.png", _png(200)), ("blue_1.png", _png(10))],
    )
    tasks = {t.input_image: t for t in session.exec(select(Task).where(Task.pool_id == pool.id))}
    assert set(tasks) == {"red_0.png", "blue_1.png"}
    add_answers(session, pool, {tasks["red_0.png"].id: [(make_labeler(session), "cat")]})

    run = _run(session, requester, pool)

    base = settings.base_url.rstrip("/")
    results = _tsv_rows(svc.build_results_tsv(session, run=run))
    assert results[0] == ["INPUT:image", "OUTPUT:result", "CONFIDENCE:result", "MEDIA:url"]
    assert results[1][:2] == ["red_0.png", "cat"]
    assert results[1][3] == base + tasks["red_0.png"].image
    assert tasks["red_0.png"].image.startswith("/media/")
    unanswered = _tsv_rows(svc.build_unanswered_tsv(session, run=run))
    assert unanswered == [
        ["INPUT:image", "MEDIA:url"],
        ["blue_1.png", base + tasks["blue_1.png"].image],
    ]


def test_image_urls_are_exported_as_given_without_a_media_column(session, requester):
    pool = make_pool(session, requester)
    answered, silent = add_tasks(session, pool, general=2)
    add_answers(session, pool, {answered.id: [(make_labeler(session), "cat")]})

    run = _run(session, requester, pool)

    results = _tsv_rows(svc.build_results_tsv(session, run=run))
    assert results[0] == ["INPUT:image", "OUTPUT:result", "CONFIDENCE:result"]
    assert results[1] == [answered.image, "cat", "1"]
    assert _tsv_rows(svc.build_unanswered_tsv(session, run=run)) == [
        ["INPUT:image"],
        [silent.image],
    ]


def test_tasks_stored_before_names_were_kept_fall_back_to_the_stored_file_name(session, requester):
    pool = make_pool(session, requester)
    uploads.submit_upload(
        session, requester=requester, pool_id=pool.id, kind="images", files=[("old.png", _png(90))]
    )
    task = session.exec(select(Task).where(Task.pool_id == pool.id)).one()
    task.input_values = {"image": task.image}  # as tasks were stored before
    session.add(task)
    session.commit()
    add_answers(session, pool, {task.id: [(make_labeler(session), "dog")]})

    run = _run(session, requester, pool)

    assert _tsv_rows(svc.build_results_tsv(session, run=run))[1][0] == "old.png"
