"""Dynamic overlap and the pool's model through the REST API: a model must be a published
one of the caller's; another requester's skill is refused; progress reports the savings."""

from __future__ import annotations

from app.services.labeling.assignments import assign_next_suite, submit_assignment
from app.services.quality.skills import create_skill
from tests.builders.models import make_collection, make_trained_model
from tests.builders.pools import add_tasks, make_pool, make_project, open_pool
from tests.builders.users import make_labeler, make_requester

DYNAMIC = {"type": "BASIC", "max_overlap": 3, "min_confidence": 0.6}


def _body(project_id, **extra):
    return {
        "project_id": str(project_id),
        "private_name": "Dynamic",
        "reward_per_assignment": 0.05,
        "defaults": {"default_overlap_for_new_task_suites": 1},
        "mixer_config": {"real_tasks_count": 1, "golden_tasks_count": 0},
        **extra,
    }


def test_pool_model_must_be_published_and_the_callers(requester_api, session, requester):
    project = make_project(session, requester)
    draft = make_trained_model(session, requester)
    response = requester_api.post("/api/v1/pools", json=_body(project.id, model_id=draft.id))
    assert response.status_code == 422
    assert "Publish the model" in response.text
    theirs = make_trained_model(session, make_requester(session), published_name="x")
    response = requester_api.post("/api/v1/pools", json=_body(project.id, model_id=theirs.id))
    assert response.status_code == 422 and "No such model" in response.text
    draft.published_name, draft.published_at = "digits", draft.finished_at
    session.add(draft)
    session.commit()
    created = requester_api.post("/api/v1/pools", json=_body(project.id, model_id=draft.id))
    assert created.status_code == 201, created.text
    assert int(created.json()["model_id"]) == draft.id


def test_another_requesters_skill_cannot_weigh_answers(requester_api, session, requester):
    project = make_project(session, requester)
    skill = create_skill(session, requester=make_requester(session), name="Theirs")
    session.commit()
    config = {**DYNAMIC, "answer_weight_skill_id": str(skill.id)}
    response = requester_api.post(
        "/api/v1/pools", json=_body(project.id, dynamic_overlap_config=config)
    )
    assert response.status_code == 422
    assert "No such skill" in response.text


def test_progress_reports_answers_bought_and_money_saved(requester_api, session, requester):
    pool = make_pool(
        session, requester, overlap=1, max_overlap=3, min_confidence=0.6,
        general_per_suite=1, control_per_suite=0, reward_cents=10,
    )  # fmt: skip
    add_tasks(session, pool, general=2)
    pool = open_pool(session, requester, pool)
    for _ in range(4):  # no control history: two agreeing answers (0.67) close a task
        labeler = make_labeler(session)
        view = assign_next_suite(session, labeler=labeler, pool_id=pool.id)
        submit_assignment(
            session, labeler=labeler, assignment_id=view.assignment_id,
            answers={t.position: "dog" for t in view.tasks}, by_position=True,
        )  # fmt: skip
    body = requester_api.get(f"/api/v1/pools/{pool.id}/progress").json()
    figures = body["dynamic_overlap"]
    assert figures["tasks_done"] == 2
    assert figures["answers_bought"] == 4
    assert figures["answers_at_fixed_overlap"] == 6
    assert figures["saved"] >= 0.2
    assert figures["answers_per_task"] == {"0": 0, "1": 0, "2": 2, "3": 0}


def test_retraining_settings_round_trip_and_are_checked(requester_api, session, requester):
    project = make_project(session, requester)
    base = make_collection(session, requester, name="Base")
    refused = requester_api.post(
        "/api/v1/pools", json=_body(project.id, model_retrain_every=100)
    )  # no dynamic overlap: nothing is "confident"
    assert refused.status_code == 422 and "dynamic overlap" in refused.text
    bad = requester_api.post(
        "/api/v1/pools",
        json=_body(project.id, dynamic_overlap_config=DYNAMIC, model_retrain_every="often"),
    )
    assert bad.status_code == 422 and "model_retrain_every" in bad.text
    created = requester_api.post(
        "/api/v1/pools",
        json=_body(
            project.id,
            dynamic_overlap_config=DYNAMIC,
            model_retrain_every=100,
            model_retrain_collection_id=str(base.id),
        ),
    )
    assert created.status_code == 201, created.text
    pool_id = created.json()["id"]
    got = requester_api.get(f"/api/v1/pools/{pool_id}").json()
    assert got["model_retrain_every"] == 100
    assert int(got["model_retrain_collection_id"]) == base.id
    changed = requester_api.put(
        f"/api/v1/pools/{pool_id}",
        json=_body(project.id, dynamic_overlap_config=DYNAMIC, model_retrain_every=None),
    )
    assert changed.status_code == 200, changed.text
    assert "model_retrain_every" not in requester_api.get(f"/api/v1/pools/{pool_id}").json()
