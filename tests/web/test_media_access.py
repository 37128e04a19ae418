"""Who may read which image: owners by hash, labelers only through their suite's opaque
addresses, and nothing about an address or response tells a control task from a general one."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from PIL import Image

from app.db.models import Assignment, TaskKind
from app.db.types import utcnow
from app.services.labeling import images as suite_images
from app.services.media import store as media
from app.services.projects import uploads
from app.services.projects.upload_formats import TaskInput
from tests.builders.pools import add_tasks, make_pool, make_project, open_pool
from tests.builders.users import login, make_labeler, make_requester

IMG_SRC = re.compile(r'<img src="([^"]*)"')


def _png(colour: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def remote_images(monkeypatch):
    """Remote task URLs answer with a PNG (no network in tests); records what was fetched."""
    fetched: list[str] = []

    def fake_fetch(url: str, **_kwargs) -> bytes:
        fetched.append(url)
        return _png("blue")

    monkeypatch.setattr("app.services.ml.inference.fetch_image_url", fake_fetch)
    monkeypatch.setattr(suite_images, "REMOTE_CACHE", suite_images._RemoteCache(1 << 20))
    return fetched


def _mixed_pool(session, requester):
    """Three general tasks from URLs and one control task from a stored file (as a ZIP
    upload leaves it: ``/media/<sha>.png`` with a media id)."""
    project = make_project(session, requester, name="Pets")
    pool = make_pool(session, requester, project, general_per_suite=3, control_per_suite=1)
    add_tasks(session, pool, general=3)
    stored = media.store_image(session, owner=requester, data=_png("red"), name="dog.png")
    session.commit()
    uploads.add_tasks(
        session,
        requester=requester,
        pool_id=pool.id,
        items=[
            TaskInput(
                image=media.media_url(stored),
                media_id=stored.id,
                known_answer="dog",
                kind=TaskKind.CONTROL,
            )
        ],
    )
    return open_pool(session, requester, pool), stored


def _take(client, pool) -> str:
    response = client.post(f"/labeler/pools/{pool.id}/take", follow_redirects=False)
    assert response.status_code == 303, response.text
    return client.get(response.headers["location"]).text


def test_control_and_general_images_have_the_same_address_shape(
    session, requester, labeler_client, remote_images
):
    pool, stored = _mixed_pool(session, requester)
    html = _take(labeler_client, pool)
    sources = IMG_SRC.findall(html)
    assert len(sources) == 4
    assert "/media/" not in html and "img.example" not in html and stored.sha256 not in html
    shapes = {re.sub(r"/\d+$", "/#", src) for src in sources}
    assert len(shapes) == 1  # one suite token, positions only
    assert all(re.fullmatch(r"/s/[A-Za-z0-9_.-]+/\d", src) for src in sources)
    responses = [labeler_client.get(src) for src in sources]
    assert [r.status_code for r in responses] == [200] * 4
    header_sets = {
        tuple(sorted((k, v) for k, v in r.headers.items() if k != "content-length"))
        for r in responses
    }
    assert len(header_sets) == 1  # same headers for the stored and the fetched images
    assert all("etag" not in r.headers and "last-modified" not in r.headers for r in responses)
    assert sorted(r.content for r in responses).count(_png("red")) == 1
    assert len(remote_images) == 3
    labeler_client.get(sources[0]), labeler_client.get(sources[1])
    assert len(remote_images) == 3  # seen again: from the cache, not fetched again


def test_labeler_json_gives_the_same_opaque_addresses(
    session, requester, labeler, labeler_api, remote_images
):
    pool, _ = _mixed_pool(session, requester)
    suite = labeler_api.post(f"/api/v1/labeler/pools/{pool.id}/suites").json()
    images = [task["image"] for task in suite["tasks"]]
    assert all(re.fullmatch(r"/s/[A-Za-z0-9_.-]+/\d", image) for image in images)
    assert len({image.rsplit("/", 1)[0] for image in images}) == 1
    assert all(labeler_api.get(image).status_code == 200 for image in images)


def test_labeler_gets_404_for_an_image_by_its_hash(session, requester, labeler_client):
    pool, stored = _mixed_pool(session, requester)
    _take(labeler_client, pool)
    assert labeler_client.get(media.media_url(stored)).status_code == 404


def test_requester_gets_404_for_another_requesters_image(
    session, requester, requester_client, make_client
):
    stored = media.store_image(session, owner=requester, data=_png("red"), name="a.png")
    session.commit()
    assert requester_client.get(media.media_url(stored)).status_code == 200
    other = login(make_client(), make_requester(session))
    assert other.get(media.media_url(stored)).status_code == 404
    assert make_client().get(media.media_url(stored)).status_code == 404  # anonymous


def test_signed_media_url_works_without_login_and_only_for_its_file(session, requester, client):
    stored = media.store_image(session, owner=requester, data=_png("red"), name="a.png")
    other = media.store_image(session, owner=requester, data=_png("green"), name="b.png")
    session.commit()
    signed = media.signed_media_url(stored)
    assert client.get(signed).content == _png("red")
    signature = signed.split("?sig=", 1)[1]
    assert client.get(f"{media.media_url(other)}?sig={signature}").status_code == 404
    assert client.get(signed + "x").status_code == 404


def test_suite_images_are_404_for_other_labelers_and_after_the_suite_ends(
    session, requester, labeler_client, make_client, remote_images
):
    pool, _ = _mixed_pool(session, requester)
    sources = IMG_SRC.findall(_take(labeler_client, pool))
    other = login(make_client(), make_labeler(session))
    assert other.get(sources[0]).status_code == 404
    forged = sources[0].replace("/s/", "/s/x")
    assert labeler_client.get(forged).status_code == 404
    suite_id = int(re.search(r"/labeler/assignments/(\d+)/skip", _take(labeler_client, pool))[1])
    suite = session.get(Assignment, suite_id)
    expires_at = suite.expires_at
    suite.expires_at = utcnow() - timedelta(seconds=1)  # overdue, not yet marked expired
    session.add(suite)
    session.commit()
    assert labeler_client.get(sources[0]).status_code == 404
    suite.expires_at = expires_at
    session.add(suite)
    session.commit()
    assert labeler_client.get(sources[0]).status_code == 200
    labeler_client.post(f"/labeler/assignments/{suite_id}/skip")
    assert labeler_client.get(sources[0]).status_code == 404
