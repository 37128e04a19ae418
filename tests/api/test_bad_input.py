"""Bad input gets a clear 4xx, never a 500: NUL bytes, odd IP address forms, strangers'
Custom Vision projects (nothing fetched for them), training settings out of bounds."""

from __future__ import annotations

import pytest

from app.services.customvision import project_uuid
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
        "app.api.customvision.images.fetch_image_url",
        "app.api.customvision.prediction.fetch_image_url",
        "app.api.customvision.iterations.fetch_image_url",
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
