"""Request bodies: a size limit per route, and uploads refused before their body is read."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor

import anyio
import numpy as np
from PIL import Image
from sqlmodel import select

from app.db.models import Task
from tests.builders.pools import make_pool
from tests.builders.users import csrf_of

CHUNK = 256 * 1024
HUGE = 1536 * 1024 * 1024  # the 1.5 GB of the report


def _send_raw(app, method: str, path: str, headers: dict[str, str], total: int = HUGE):
    """Call the ASGI app with a body streamed in chunks; returns the status and how many
    body bytes the app asked for (a TestClient reads the whole body before the app runs)."""
    consumed = 0
    messages: list[dict] = []

    async def receive():
        nonlocal consumed
        if consumed >= total:
            return {"type": "http.request", "body": b"", "more_body": False}
        consumed += CHUNK
        return {"type": "http.request", "body": b"x" * CHUNK, "more_body": True}

    async def send(message):
        messages.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 40000),
        "server": ("testserver", 80),
        "state": {},
    }
    # on a thread of its own: an earlier test's event loop (Playwright's, in a whole-suite
    # run) may still be running on this one
    with ThreadPoolExecutor(max_workers=1) as thread:
        thread.submit(anyio.run, app, scope, receive, send).result()
    return messages[0]["status"], consumed


MULTIPART = "multipart/form-data; boundary=xyz"


def test_huge_anonymous_login_post_is_refused_413_unread(app):
    status, consumed = _send_raw(
        app, "POST", "/login", {"content-type": MULTIPART, "content-length": str(HUGE)}
    )
    assert status == 413
    assert consumed == 0


def test_huge_chunked_login_post_stops_at_the_limit(app):
    form = "application/x-www-form-urlencoded"
    status, consumed = _send_raw(app, "POST", "/login", {"content-type": form})
    assert status == 413
    assert consumed <= 1024 * 1024 + CHUNK  # not 1.5 GB: reading stopped at 1 MiB


def test_big_json_body_to_the_api_is_413_in_json(client):
    response = client.post(
        "/api/v1/projects",
        content=b"[" + b" " * (17 * 1024 * 1024) + b"]",
        headers={"content-type": "application/json", "Authorization": "OAuth x"},
    )
    assert response.status_code == 413
    assert response.json()["code"] == "REQUEST_TOO_LARGE"


def test_form_over_one_mib_on_a_plain_page_is_413(requester_client):
    response = requester_client.post(
        "/requester/projects/new", data={"name": "p", "description": "x" * (1100 * 1024)}
    )
    assert response.status_code == 413
    assert "larger than this address accepts" in response.text


def _noise_png(side: int) -> bytes:
    pixels = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def test_image_upload_above_the_form_limit_is_accepted(requester_client, session, requester):
    pool = make_pool(session, requester)
    image = _noise_png(1000)
    assert len(image) > 2 * 1024 * 1024
    response = requester_client.post(
        f"/requester/pools/{pool.id}/upload",
        data={"kind": "images"},
        files={"files": ("big.png", image, "image/png")},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200, response.text
    assert len(session.exec(select(Task)).all()) == 1


def test_anonymous_multipart_upload_is_refused_before_the_body_is_read(app, client):
    headers = {"content-type": MULTIPART, "content-length": str(50 * 1024 * 1024)}
    status, consumed = _send_raw(app, "POST", "/requester/pools/1/upload", headers)
    assert status in (401, 403) and consumed == 0
    # Chunked, with a CSRF token from an anonymous session: still no log-in.
    token = csrf_of(client)
    cookie = f"crowdlab_session={client.cookies['crowdlab_session']}"
    headers = {"content-type": MULTIPART, "x-csrf-token": token, "cookie": cookie}
    status, consumed = _send_raw(app, "POST", "/requester/pools/1/upload", headers)
    assert status == 401 and consumed == 0


def test_logged_in_upload_without_csrf_token_is_refused_unread(app, requester_client):
    cookie = f"crowdlab_session={requester_client.cookies['crowdlab_session']}"
    headers = {"content-type": MULTIPART, "cookie": cookie}
    status, consumed = _send_raw(app, "POST", "/requester/collections/import", headers)
    assert status == 403 and consumed == 0


def test_anonymous_api_upload_is_401_before_the_body_is_read(app):
    for path in ("/api/v1/pools/1/uploads", "/api/v1/collections", "/api/v1/models/1/predict"):
        status, consumed = _send_raw(app, "POST", path, {"content-type": MULTIPART})
        assert status == 401 and consumed == 0, path


def test_csrf_token_in_the_query_string_is_accepted_for_a_multipart_form(
    requester_client, session, requester
):
    pool = make_pool(session, requester)
    token = requester_client.headers.pop("X-CSRF-Token")
    page = requester_client.get(f"/requester/pools/{pool.id}/bans").text
    assert f"?csrf_token={token}" in page
    response = requester_client.post(
        f"/requester/pools/{pool.id}/bans/upload?csrf_token={token}",
        files={"file": ("ids.txt", b"", "text/plain")},
        follow_redirects=False,
    )
    assert response.status_code not in (401, 403, 413)
