"""A published model as one more labeler: the background job answers the pool's tasks,
measures the model on control tasks, and its weight decides whether one agreeing
labeler closes a task. A model wrong on every control task closes none."""

from __future__ import annotations

from sqlmodel import select

from app.db.models import Pool, PoolStatus, Task, TaskKind
from app.services.labeling.assignments import assign_next_suite, submit_assignment
from app.services.ml.inference import predictor_for
from app.services.projects import control_tasks, pool_model, pools, progress, uploads
from tests.builders.models import digit_pngs, make_trained_model
from tests.builders.pools import make_pool, make_project, open_pool
from tests.builders.users import make_labeler

DIGITS = [str(d) for d in range(10)]


def _published_model(session, requester):
    model = make_trained_model(session, requester, published_name="digits")
    model.published_at = model.finished_at
    session.add(model)
    session.commit()
    return model


def _pool_with_model(session, requester, model, *, controls_right: bool):
    """Four control digits whose known answer is the model's guess (or never is), and
    three general digits; then the pool gets the model (which queues the job)."""
    project = make_project(session, requester, options=DIGITS)
    pool = make_pool(
        session, requester, project, overlap=1, max_overlap=3, min_confidence=0.8,
        general_per_suite=1, control_per_suite=0,
    )  # fmt: skip
    pngs = digit_pngs()
    files = [(f"{d}.png", pngs[d][50]) for d in ("0", "1", "2", "3", "4", "5", "6")]
    uploads.submit_upload(session, requester=requester, pool_id=pool.id, kind="images", files=files)
    predictor = predictor_for(model)
    tasks = session.exec(select(Task).where(Task.pool_id == pool.id).order_by(Task.id)).all()
    for task, (_, data) in list(zip(tasks, files, strict=True))[:4]:
        [(guess, _)] = predictor.predict(data, top_k=1)
        known = guess if controls_right else DIGITS[(DIGITS.index(guess) + 1) % 10]
        control_tasks.mark_control(session, requester=requester, task_id=task.id, answer=known)
    pool = pools.update_pool(session, requester=requester, pool_id=pool.id, model_id=model.id)
    return open_pool(session, requester, pool)


def _crowd_agrees_with_the_model(session, pool) -> dict[int, int]:
    """Labelers (no control history) answer each task with the model's answer until the
    pool runs dry; returns answers per general task."""
    for _ in range(12):
        labeler = make_labeler(session)
        try:
            view = assign_next_suite(session, labeler=labeler, pool_id=pool.id)
        except Exception:  # noqa: BLE001  (no task left)
            break
        answers = {t.position: session.get(Task, t.task_id).model_answer or "0" for t in view.tasks}
        submit_assignment(
            session, labeler=labeler, assignment_id=view.assignment_id,
            answers=answers, by_position=True,
        )  # fmt: skip
    session.expire_all()
    general = session.exec(
        select(Task).where(Task.pool_id == pool.id, Task.kind == TaskKind.GENERAL)
    ).all()
    return {t.id: t.submitted_count for t in general}


def test_the_job_measures_the_model_and_a_good_model_plus_one_labeler_closes(session, requester):
    model = _published_model(session, requester)
    pool = _pool_with_model(session, requester, model, controls_right=True)
    assert (pool.model_control_answers, pool.model_control_correct) == (4, 4)
    general = session.exec(
        select(Task).where(Task.pool_id == pool.id, Task.kind == TaskKind.GENERAL)
    ).all()
    assert all(t.model_answer in DIGITS for t in general)
    assert all(t.confidence >= 0.89 for t in general)  # 4 of 4 right: q = 0.9 among 10
    counts = _crowd_agrees_with_the_model(session, pool)
    assert sorted(counts.values()) == [1, 1, 1]
    assert session.get(Pool, pool.id).status == PoolStatus.CLOSED


def test_a_model_wrong_on_every_control_task_closes_no_task(session, requester):
    model = _published_model(session, requester)
    pool = _pool_with_model(session, requester, model, controls_right=False)
    assert (pool.model_control_answers, pool.model_control_correct) == (4, 0)
    counts = _crowd_agrees_with_the_model(session, pool)
    # the model weighs nothing: one labeler alone is 50 % sure, two 90 %: every task needs two
    assert sorted(counts.values()) == [2, 2, 2]


def test_labelers_see_the_models_guess_only_when_the_project_preselects_it(session, requester):
    model = _published_model(session, requester)
    pool = _pool_with_model(session, requester, model, controls_right=True)
    first = assign_next_suite(session, labeler=make_labeler(session), pool_id=pool.id)
    assert first.draft == {}  # off by default: no anchoring
    pool_model.set_preselect_model_answer(
        session, requester=requester, project_id=pool.project_id, on=True
    )
    labeler = make_labeler(session)
    view = assign_next_suite(session, labeler=labeler, pool_id=pool.id)
    [task] = view.tasks
    guess = session.get(Task, task.task_id).model_answer
    assert view.draft == {task.position: guess}
    submit_assignment(
        session, labeler=labeler, assignment_id=view.assignment_id,
        answers=view.draft, by_position=True,
    )  # fmt: skip
    header, *lines = progress.export_raw_answers(
        session, requester=requester, pool_id=pool.id
    ).splitlines()
    assert header.split("\t")[-1] == "MODEL:preselected"
    assert lines[0].split("\t")[-1] == guess
