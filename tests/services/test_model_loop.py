"""The model in the loop: its answer weighs by its confusion matrix (learned from control
tasks and the tasks people made confident), and the pool retrains its model every N newly
confident tasks, then uses the new one."""

from __future__ import annotations

import pytest
from sqlmodel import select

from app.db.models import CollectionItem, Pool, Task, TaskKind, TrainedModel
from app.errors import ValidationFailed
from app.services.labeling.assignments import assign_next_suite, submit_assignment
from app.services.ml import pool_retraining
from app.services.projects import pool_model, pools, uploads
from tests.builders.models import digit_pngs, make_collection, make_trained_model
from tests.builders.pools import add_tasks, make_pool, make_project, open_pool
from tests.builders.users import make_labeler, make_requester
from workers.jobs.pool_model import learn_pool_models

DIGITS = [str(d) for d in range(10)]


def _published(session, requester, **fields):
    model = make_trained_model(session, requester, published_name="digits", **fields)
    model.published_at = model.finished_at
    session.add(model)
    session.commit()
    return model


def _answer_all(session, pool, answer_of, *, suites: int | None = None) -> None:
    """New labelers (no control history: 50 % sure each) take and answer suites until the
    pool has none left (or ``suites`` of them); ``answer_of(task)`` is each one's answer."""
    for _ in range(suites or 200):
        labeler = make_labeler(session)
        try:
            view = assign_next_suite(session, labeler=labeler, pool_id=pool.id)
        except Exception:  # noqa: BLE001  (nothing left to take)
            return
        answers = {t.position: answer_of(session.get(Task, t.task_id)) for t in view.tasks}
        submit_assignment(
            session, labeler=labeler, assignment_id=view.assignment_id,
            answers=answers, by_position=True,
        )  # fmt: skip
    if suites is None:
        raise AssertionError("the pool never ran dry")


def test_a_class_the_model_confuses_needs_more_people_than_one_it_gets_right(session, requester):
    """On control tasks the model is right on every 0 and 2 but calls half the 1s "0". A
    task it calls "2" closes with one agreeing person; one it calls "0" (a 0 or a 1) does
    not. Weighed by its overall accuracy alone (82 %), both would have closed."""
    project = make_project(session, requester, options=DIGITS)
    pool = make_pool(
        session, requester, project, overlap=1, max_overlap=3, min_confidence=0.95,
        general_per_suite=1, control_per_suite=0,
    )  # fmt: skip
    tasks = add_tasks(session, pool, general=4, control=["0"] * 6 + ["1"] * 6 + ["2"] * 6)
    pool.model_id = _published(session, requester).id
    session.add(pool)
    session.commit()
    controls = [t for t in tasks if t.kind == TaskKind.CONTROL]
    answers = []
    for n, task in enumerate(controls):
        label = "0" if task.known_answer == "1" and n % 2 else task.known_answer
        answers.append((task.id, task.known_answer, label, 0.9))
    voter = pool_model.record_control_answers(session, pool_id=pool.id, answers=answers)
    general = [t for t in tasks if t.kind == TaskKind.GENERAL]
    said = {general[0].id: "2", general[1].id: "2", general[2].id: "0", general[3].id: "0"}
    pool_model.record_predictions(
        session, values=DIGITS, model=voter,
        predictions=[(tid, None, label, 0.9) for tid, label in said.items()],
    )  # fmt: skip
    session.commit()
    pool = session.get(Pool, pool.id)
    assert pool.model_confusion == {"0": {"0": 6}, "1": {"1": 3, "0": 3}, "2": {"2": 6}}
    open_pool(session, requester, pool)

    _answer_all(session, pool, lambda task: said.get(task.id, "0"))  # people agree with it

    session.expire_all()
    answered = {tid: session.get(Task, tid).submitted_count for tid in said}
    assert [answered[t.id] for t in general] == [1, 1, 2, 2]


def _digit_pool(session, requester, *, every: int, base=None):
    """A digits pool with 10 control and 40 general tasks (stored images of 0, 1 and 2),
    dynamic overlap 1..3 at 95 %, the shared tiny model and retraining every ``every``."""
    project = make_project(session, requester, options=DIGITS)
    pool = make_pool(
        session, requester, project, overlap=1, max_overlap=3, min_confidence=0.95,
        general_per_suite=2, control_per_suite=0,
    )  # fmt: skip
    pngs = digit_pngs()
    truth = {}
    files = []
    for n in range(50):
        digit = str(n % 3)
        files.append((f"{n:02d}-{digit}.png", pngs[digit][n]))
    uploads.submit_upload(session, requester=requester, pool_id=pool.id, kind="images", files=files)
    tasks = session.exec(select(Task).where(Task.pool_id == pool.id).order_by(Task.id)).all()
    for task, (name, _) in zip(tasks, files, strict=True):
        truth[task.id] = name[3]
    from app.services.projects import control_tasks

    for task in tasks[:10]:
        control_tasks.mark_control(
            session, requester=requester, task_id=task.id, answer=truth[task.id]
        )
    model = _published(session, requester)
    pool = pools.update_pool(
        session, requester=requester, pool_id=pool.id, model_id=model.id,
        model_retrain_every=every, model_retrain_collection_id=base.id if base else None,
    )  # fmt: skip
    return open_pool(session, requester, pool), model, truth


def test_the_pool_retrains_its_model_every_n_confident_tasks_and_uses_the_new_one(
    session, requester
):
    base = make_collection(session, requester, name="Base digits", classes=("0", "1", "2"))
    pool, first_model, truth = _digit_pool(session, requester, every=4, base=base)
    assert learn_pool_models() == 0  # nothing confident yet

    _answer_all(session, pool, lambda task: truth[task.id], suites=6)  # the crowd is right

    session.expire_all()
    confident = pool_retraining.confident_count(session, pool=session.get(Pool, pool.id))
    assert confident >= 4
    assert learn_pool_models() == 1  # queued, trained and adopted (jobs run at once here)
    session.expire_all()
    pool = session.get(Pool, pool.id)
    assert pool.model_id != first_model.id
    assert pool.model_retrain_model_id is None
    assert pool.model_retrain_seen == confident
    new_model = session.get(TrainedModel, pool.model_id)
    assert new_model.status == "completed"
    items = session.exec(
        select(CollectionItem).where(CollectionItem.collection_id == new_model.collection_id)
    ).all()
    from_pool = {item.source_task_id for item in items if item.source_task_id is not None}
    controls = {t.id for t in session.exec(select(Task).where(
        Task.pool_id == pool.id, Task.kind == TaskKind.CONTROL)).all()}  # fmt: skip
    assert controls <= from_pool  # the control tasks with their known answers
    assert from_pool - controls  # and confident general tasks
    assert all(item.label == truth[item.source_task_id] for item in items if item.source_task_id)
    base_media = set(
        session.exec(
            select(CollectionItem.media_id).where(CollectionItem.collection_id == base.id)
        ).all()
    )
    assert base_media <= {item.media_id for item in items}  # and the base collection's images
    # the new model answered the pool's tasks again and was measured on its controls
    general = session.exec(
        select(Task).where(Task.pool_id == pool.id, Task.kind == TaskKind.GENERAL)
    ).all()
    assert all(t.model_answer is not None for t in general)
    assert pool.model_control_answers == 10
    assert learn_pool_models() == 0  # no new confident task: no new retraining


def test_retraining_needs_dynamic_overlap_and_ones_own_collection(session, requester):
    project = make_project(session, requester, options=DIGITS)
    pool = make_pool(session, requester, project)
    with pytest.raises(ValidationFailed) as refused:
        pools.update_pool(session, requester=requester, pool_id=pool.id, model_retrain_every=10)
    assert "dynamic overlap" in refused.value.errors["model_retrain_every"]
    theirs = make_collection(session, make_requester(session), name="Theirs")
    with pytest.raises(ValidationFailed) as refused:
        pools.update_pool(
            session, requester=requester, pool_id=pool.id, model_retrain_collection_id=theirs.id
        )
    assert refused.value.errors == {
        "model_retrain_collection_id": "No such collection among yours."
    }


def test_a_retried_retraining_job_does_not_start_a_second_training(session, requester):
    """The worker died after the job had started the training: the retry finds it."""
    pool, _, truth = _digit_pool(session, requester, every=4)
    _answer_all(session, pool, lambda task: truth[task.id], suites=6)
    session.expire_all()
    pool = session.get(Pool, pool.id)
    pool.model_retrain_model_id = make_trained_model(session, requester, status="training").id
    session.add(pool)
    session.commit()
    models_before = len(session.exec(select(TrainedModel)).all())
    again = pool_retraining.start_retraining(session, pool_id=pool.id)
    assert again.id == pool.model_retrain_model_id
    assert len(session.exec(select(TrainedModel)).all()) == models_before
