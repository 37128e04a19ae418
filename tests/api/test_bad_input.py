"""Bad input gets a clear 4xx, never a 500: NUL bytes, odd IP address forms, strangers'
Custom Vision projects (nothing fetched for them), training settings out of bounds."""

from __future__ import annotations

import pytest

from app.compat.customvision.domain import project_uuid
from tests.builders.models import make_collection
from tests.builders.users import make_requester, make_token

T = "/customvision/v3.3/training"
P = "/customvision/v3.0/prediction"


@pytest.fixture
def fetched(monkeypatch):
    """Record every server-side image fetch (and answer none)."""
    urls: list[str] = []

    def fake_fetch(url: str, **_kwargs) -> bytes:
        urls.append(url)
        raise AssertionError("fetched")

    for where in (
        "app.compat.customvision.routes.images.fetch_image_url",
        "app.compat.customvision.routes.prediction.fetch_image_url",
        "app.compat.customvision.routes.iterations.fetch_image_url",
    ):
        monkeypatch.setattr(where, fake_fetch)
    return urls


def test_custom_vision_url_routes_check_the_project_before_fetching(session, make_client, fetched):
    owner = make_requester(session)
    collection = make_collection(session, owner, name="Theirs", per_class=2)
    pid = project_uuid(collection.id)
    stranger = make_client()
    stranger.headers["Training-Key"] = make_token(session, make_requester(session))
    stranger.headers["Prediction-Key"] = stranger.headers["Training-Key"]
    url = {"url": "https://img.example/secret.png"}
    responses = [
        stranger.post(f"{T}/projects/{pid}/images/urls", json={"images": [url]}),
        stranger.post(f"{T}/projects/{pid}/quicktest/url", json=url),
        stranger.post(f"{P}/{pid}/classify/iterations/v1/url", json=url),
        stranger.post(f"{P}/{pid}/classify/iterations/v1/url/nostore", json=url),
    ]
    assert [r.status_code for r in responses] == [404] * 4
    assert {r.json()["code"] for r in responses} == {"NotFoundProject"}
    assert fetched == []


NUL = "Pe\x00ts"


def _refused(response, field: str) -> None:
    assert response.status_code == 422, response.text
    body = response.json()
    assert "NUL" in body["message"] or "NUL" in str(body["payload"])
    assert field in str(body["payload"])


def test_nul_in_project_and_pool_names_is_a_clear_422(requester_api, session, requester):
    from tests.api.test_pools_api import NOTEBOOK_POOL
    from tests.builders.pools import make_project

    options = [{"label": "Yes", "value": "yes"}, {"label": "No", "value": "no"}]
    _refused(
        requester_api.post(
            "/api/v1/projects", json={"public_name": NUL, "answer_options": options}
        ),
        "name",
    )
    _refused(
        requester_api.post(
            "/api/v1/projects",
            json={"public_name": "Pets", "public_instructions": NUL, "answer_options": options},
        ),
        "instructions",
    )
    project = make_project(session, requester)
    pool = {**NOTEBOOK_POOL, "project_id": str(project.id), "private_name": NUL}
    _refused(requester_api.post("/api/v1/pools", json=pool), "name")


def test_nul_in_task_input_values_is_a_clear_422(requester_api, session, requester):
    from tests.builders.pools import make_pool, make_project

    pool = make_pool(session, requester, make_project(session, requester))
    for values in (
        {"image": "https://img.example/a\x00.png"},
        {"image": "https://img.example/a.png", "note": NUL},
        {"image": "https://img.example/a.png", "tags": ["ok", NUL]},
    ):
        response = requester_api.post(
            "/api/v1/tasks", json={"pool_id": str(pool.id), "input_values": values}
        )
        _refused(response, "input_values")
    batch = requester_api.post(
        "/api/v1/tasks",
        params={"skip_invalid_items": "true"},
        json=[
            {"pool_id": str(pool.id), "input_values": {"image": "https://img.example/b.png"}},
            {"pool_id": str(pool.id), "input_values": {"image": "https://img.example/c\x00"}},
        ],
    )
    assert batch.status_code == 201
    assert list(batch.json()["items"]) == ["0"] and list(batch.json()["validation_errors"]) == ["1"]


def test_nul_in_collection_and_custom_vision_names_is_refused(requester_client, session, requester):
    from tests.builders.models import digits_zip

    response = requester_client.post(
        "/requester/collections/import",
        data={"name": NUL, "val_fraction": "0.2", "seed": "0"},
        files={"file": ("d.zip", digits_zip(per_class=5).getvalue(), "application/zip")},
    )
    assert response.status_code == 422 and "NUL" in response.text
    cv = requester_client
    cv.headers["Training-Key"] = make_token(session, requester)
    for name in (NUL, "tab\there"):
        answer = cv.post(f"{T}/projects", params={"name": name})
        assert answer.status_code == 400 and answer.json()["code"] == "BadRequestProjectName"


@pytest.mark.parametrize(
    ("field", "value", "limit"),
    [("epochs", 10**9, 500), ("batch_size", 10**6, 1024), ("image_size", 2048, 1024)],
)
def test_training_settings_have_upper_bounds_in_the_api_and_the_form(
    requester_api, requester_client, session, requester, field, value, limit
):
    from sqlmodel import select

    from app.db.models import TrainedModel

    collection = make_collection(session, requester, per_class=3)
    settings = {"arch": "test_resnet", "epochs": 1, "batch_size": 8, "image_size": 32}
    response = requester_api.post(
        "/api/v1/models", json={"collection_id": collection.id, **settings, field: value}
    )
    assert response.status_code == 422, response.text
    assert f"at most {limit}" in response.json()["message"]
    assert field in response.json()["payload"]["errors"]
    page = requester_client.post(
        "/requester/models/train",
        data={**settings, "lr": "0.001", "collection_id": collection.id, field: str(value)},
    )
    assert page.status_code == 422 and "Between" in page.text and str(limit) in page.text
    assert session.exec(select(TrainedModel)).all() == []


def test_custom_vision_train_refuses_settings_out_of_bounds(
    session, requester, make_client, monkeypatch
):
    collection = make_collection(session, requester, per_class=5)
    cv = make_client()
    cv.headers["Training-Key"] = make_token(session, requester)
    monkeypatch.setenv("CROWDLAB_CV_EPOCHS", str(10**9))
    response = cv.post(f"{T}/projects/{project_uuid(collection.id)}/train")
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "BadRequest"
    assert "epochs must be at most 500" in response.json()["message"]


def test_nul_in_a_project_task_spec_is_a_clear_422(requester_api):
    spec = {"view_spec": {"config": "{}", "note": NUL}}
    body = {
        "public_name": "Pets",
        "task_spec": spec,
        "answer_options": [{"label": "Yes", "value": "yes"}, {"label": "No", "value": "no"}],
    }
    _refused(requester_api.post("/api/v1/projects", json=body), "task_spec")


def test_a_nul_that_postgresql_refuses_is_a_422_not_a_500():
    import psycopg
    from sqlalchemy.exc import DataError

    from app.main import _is_nul_in_text

    refused = psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes")
    assert _is_nul_in_text(refused)
    assert _is_nul_in_text(DataError("INSERT ...", {}, refused))
    assert not _is_nul_in_text(psycopg.DataError("value too long for type character varying"))


def test_a_nul_refused_by_the_database_comes_back_as_a_422(requester_api, monkeypatch):
    import psycopg

    from app.services.projects import projects as projects_service

    def refuse(*_args, **_kwargs):
        raise psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes")

    monkeypatch.setattr(projects_service, "list_projects", refuse)
    response = requester_api.get("/api/v1/projects")
    assert response.status_code == 422 and "NUL" in response.json()["message"]
