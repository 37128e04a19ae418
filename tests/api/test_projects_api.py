"""Projects API: Toloka shapes, options from the task spec, paging, and 404 for others' ids."""

from __future__ import annotations

import json

from app.services.projects.projects import OptionInput, build_task_spec
from tests.builders.pools import add_tasks, make_pool, make_project, open_pool
from tests.builders.users import make_requester, make_token

TOLOKA_PROJECT = {
    "public_name": "Is it a cat or a dog?",
    "public_description": "Look at the picture",
    "public_instructions": "Decide what category the image belongs to.",
    "assignments_issuing_type": "AUTOMATED",
    "task_spec": build_task_spec(
        "", [OptionInput("Cat", "cat"), OptionInput("Dog", "dog"), OptionInput("Other", "other")]
    ),
}


def test_create_project_keeps_task_spec_and_reads_options(requester_api):
    response = requester_api.post("/api/v1/projects", json=TOLOKA_PROJECT)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["id"] == "0000000001" and body["status"] == "ACTIVE"
    assert body["task_spec"] == TOLOKA_PROJECT["task_spec"]
    assert isinstance(body["task_spec"]["view_spec"]["config"], str)
    assert [o["value"] for o in body["answer_options"]] == ["cat", "dog", "other"]
    assert requester_api.get(f"/api/v1/projects/{body['id']}").json()["public_name"] == (
        "Is it a cat or a dog?"
    )


def test_create_with_answer_options_builds_a_spec(requester_api):
    body = requester_api.post(
        "/api/v1/projects",
        json={
            "public_name": "Pets",
            "answer_options": [{"label": "Yes", "value": "yes"}, {"label": "No", "value": "no"}],
        },
    ).json()
    config = json.loads(body["task_spec"]["view_spec"]["config"])
    assert config["plugins"][1]["2"]["payload"] == "no"


def test_invalid_project_gets_toloka_error_shape(requester_api):
    response = requester_api.post(
        "/api/v1/projects", json={"public_name": "", "answer_options": [{"value": "only"}]}
    )
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "VALIDATION_ERROR"
    assert set(body["payload"]["errors"]) == {"name", "options"}


def test_list_is_paged_with_items_and_has_more(requester_api, session, requester):
    for i in range(3):
        make_project(session, requester, name=f"P{i}")
    first = requester_api.get("/api/v1/projects", params={"limit": 2}).json()
    assert [p["public_name"] for p in first["items"]] == ["P0", "P1"] and first["has_more"]
    rest = requester_api.get(
        "/api/v1/projects", params={"limit": 2, "id_gt": first["items"][-1]["id"]}
    ).json()
    assert [p["public_name"] for p in rest["items"]] == ["P2"] and not rest["has_more"]


def test_update_and_archive(requester_api, session, requester):
    project = make_project(session, requester)
    pid = f"{project.id:010d}"
    got = requester_api.get(f"/api/v1/projects/{pid}").json()
    got["public_name"] = "Renamed"
    assert requester_api.put(f"/api/v1/projects/{pid}", json=got).json()["public_name"] == "Renamed"
    op = requester_api.post(f"/api/v1/projects/{pid}/archive")
    assert op.status_code == 202 and op.json()["type"] == "PROJECT.ARCHIVE"
    assert op.json()["status"] == "SUCCESS"
    assert requester_api.get(f"/api/v1/operations/{op.json()['id']}").json()["status"] == "SUCCESS"
    assert requester_api.get(f"/api/v1/projects/{pid}").json()["status"] == "ARCHIVED"
    assert requester_api.post(f"/api/v1/projects/{pid}/archive").status_code == 204


def test_options_frozen_while_pool_open(requester_api, session, requester):
    project = make_project(session, requester)
    pool = make_pool(session, requester, project)
    add_tasks(session, pool, general=1)
    open_pool(session, requester, pool)
    got = requester_api.get(f"/api/v1/projects/{project.id}").json()
    got["answer_options"] = [{"value": "a"}, {"value": "b"}]
    response = requester_api.put(f"/api/v1/projects/{project.id}", json=got)
    assert response.status_code == 422 and "close it first" in response.json()["message"]


def test_another_requesters_project_is_404(requester_api, session, make_client):
    other = make_requester(session)
    project = make_project(session, other)
    for method, path in (
        ("get", f"/api/v1/projects/{project.id}"),
        ("put", f"/api/v1/projects/{project.id}"),
        ("post", f"/api/v1/projects/{project.id}/archive"),
    ):
        kwargs = {"json": {"public_name": "x"}} if method == "put" else {}
        response = getattr(requester_api, method)(path, **kwargs)
        assert response.status_code == 404 and response.json()["code"] == "DOES_NOT_EXIST"
    assert requester_api.get("/api/v1/projects").json()["items"] == []
    labeler_api = make_client()
    from tests.builders.users import make_labeler

    labeler_api.headers["Authorization"] = f"OAuth {make_token(session, make_labeler(session))}"
    assert labeler_api.get("/api/v1/projects").status_code == 403
