"""Media on an S3-compatible store (``CROWDLAB_MEDIA_URL=s3://…``, as a user configures it):
uploads land there, and while the store is unreachable an upload is refused as a whole with
a 503 to retry (never a 500), and works again once the store is back."""

from __future__ import annotations

import socket

import pytest
from sqlmodel import func, select

from app.db.models import Task
from tests.builders.pools import make_pool
from tests.services.test_uploads import png

pytest.importorskip("s3fs")
moto_server = pytest.importorskip("moto.server")

BUCKET = "crowdlab-test-media"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def s3_store(settings, monkeypatch):
    """A moto S3 server on its own port, the app's media on ``s3://BUCKET/media``;
    ``store.stop()`` / ``store.start()`` take it away and bring it back."""
    import fsspec
    import s3fs

    from app.services.media import store as media_store
    from app.settings import get_settings

    port = _free_port()

    class Store:
        server = None

        def start(self) -> None:
            self.server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port)
            self.server.start()

        def stop(self) -> None:
            self.server.stop()

    store = Store()
    store.start()
    env = {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{port}",
        "AWS_MAX_ATTEMPTS": "1",  # a refused connection is not retried for seconds
        "CROWDLAB_MEDIA_URL": f"s3://{BUCKET}/media",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    media_store._filesystem.cache_clear()  # noqa: SLF001 - a new store URL for this test
    s3fs.S3FileSystem.clear_instance_cache()
    fsspec.filesystem("s3").mkdir(BUCKET)
    yield store
    store.stop()
    media_store._filesystem.cache_clear()  # noqa: SLF001
    s3fs.S3FileSystem.clear_instance_cache()


def _upload(api, pool_id: int, names: list[str]):
    files = [("files", (name, png((ord(name[0]) * 2, 90, 200)), "image/png")) for name in names]
    return api.post(f"/api/v1/pools/{pool_id}/uploads", data={"kind": "images"}, files=files)


def _tasks(session, pool_id: int) -> int:
    session.expire_all()
    return session.exec(select(func.count()).select_from(Task).where(Task.pool_id == pool_id)).one()


def test_uploads_go_to_s3_and_an_unreachable_store_is_a_503_to_retry(
    s3_store, requester_api, session, requester
):
    import fsspec

    pool = make_pool(session, requester)
    first = _upload(requester_api, pool.id, ["a.png", "b.png"])
    assert first.status_code == 201, first.text
    stored = fsspec.filesystem("s3").find(f"{BUCKET}/media")
    assert len(stored) == 2 and all(key.endswith(".png") for key in stored)
    image = requester_api.get(
        session.exec(select(Task.image).where(Task.pool_id == pool.id)).first()
    )
    assert image.status_code == 200 and image.content.startswith(b"\x89PNG")

    s3_store.stop()
    refused = _upload(requester_api, pool.id, ["c.png", "d.png"])
    assert refused.status_code == 503, refused.text
    assert refused.json()["code"] == "MEDIA_STORE_UNAVAILABLE"
    assert "try again" in refused.json()["message"]
    assert int(refused.headers["Retry-After"]) > 0
    assert _tasks(session, pool.id) == 2  # nothing of the refused upload was imported
    unreadable = requester_api.get(image.request.url.path)
    assert unreadable.status_code == 503 and "unreachable" in unreadable.text

    s3_store.start()  # (the in-process server keeps its objects, as a real store would)
    assert requester_api.get(image.request.url.path).status_code == 200
    again = _upload(requester_api, pool.id, ["c.png", "d.png"])
    assert again.status_code == 201, again.text
    assert _tasks(session, pool.id) == 4
