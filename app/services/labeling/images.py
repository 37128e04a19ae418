"""A suite's images behind opaque, per-suite addresses: ``/s/<suite token>/<position>``.

Control tasks often come from a ZIP (stored media) and general tasks from a TSV of URLs;
if labelers saw those addresses they could tell the two apart. So every task image of a
suite is served from the same address shape, with the same headers, and the server reads
the bytes itself: from the media store, or from the remote URL (with the SSRF guard and
size limit of every server-side fetch).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from functools import lru_cache
from typing import NamedTuple

from itsdangerous import BadData, URLSafeSerializer
from sqlalchemy import String, column, text
from sqlmodel import Session

from app.db.types import UTCDateTime, utcnow
from app.errors import CrowdlabError, NotFound
from app.services.media import store as media
from app.settings import get_settings

# identical for every suite image: nothing about where the bytes came from (no ETag from
# a content hash, no Last-Modified, no upstream headers)
HEADERS = {"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"}

# the labeler's active suite, the task at ``position`` and its stored file, if any. A task
# naming ``/media/<sha>…`` without a media id is looked up among the pool owner's files only.
_SUITE_IMAGE = text(
    """
SELECT t.image, COALESCE(m.storage_key, mo.storage_key), COALESCE(m.content_type, mo.content_type),
  a.expires_at
FROM assignment a
JOIN assignment_task at ON at.assignment_id = a.id AND at.position = :position
JOIN task t ON t.id = at.task_id
LEFT JOIN media_file m ON m.id = t.media_id
LEFT JOIN pool p ON t.media_id IS NULL AND p.id = a.pool_id
LEFT JOIN media_file mo ON t.media_id IS NULL AND mo.owner_id = p.owner_id
  AND mo.sha256 = :sha
WHERE a.id = :assignment_id AND a.labeler_id = :labeler_id AND a.status = 'active'
"""
).columns(
    column("image", String),
    column("storage_key", String),
    column("content_type", String),
    column("expires_at", UTCDateTime),
)


class SuiteImage(NamedTuple):
    """Where a suite task's bytes are: a stored file (key, type) or a remote URL."""

    url: str
    storage_key: str | None
    content_type: str | None


@lru_cache(maxsize=4)
def _serializer_for(secret: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret, salt="crowdlab.suite-image")


def _serializer() -> URLSafeSerializer:
    return _serializer_for(get_settings().resolved_secret_key)


def suite_token(assignment_id: int) -> str:
    """The suite's signed, opaque token (the same for every task of the suite)."""
    return _serializer().dumps(assignment_id)


def suite_image_path(assignment_id: int, position: int) -> str:
    """The address a labeler's page and JSON use for the image at ``position``."""
    return f"/s/{suite_token(assignment_id)}/{position}"


def locate_suite_image(
    session: Session, *, token: str, position: int, labeler_id: int
) -> SuiteImage:
    """Where the image at ``position`` of the labeler's own active suite is; anything else
    (a forged token, someone else's suite, a finished one) is ``NotFound``."""
    try:
        assignment_id = int(_serializer().loads(token))
    except (BadData, TypeError, ValueError):
        raise NotFound("No such image.") from None
    params = {"assignment_id": assignment_id, "labeler_id": labeler_id, "position": position}
    row = session.connection().execute(_SUITE_IMAGE, {**params, "sha": ""}).first()
    if row is None or row[3] <= utcnow():  # (an overdue suite is as good as expired)
        raise NotFound("No such image.")
    image, key, content_type, _ = row
    if key is None and image.startswith("/media/"):  # rare: a task naming a stored file
        sha = image.removeprefix("/media/").split(".", 1)[0]
        row = session.connection().execute(_SUITE_IMAGE, {**params, "sha": sha}).first()
        image, key, content_type, _ = row
        if key is None:
            raise NotFound("No such image.")
    return SuiteImage(image, key, content_type)


class _RemoteCache:
    """Recently fetched remote images, up to ``limit`` bytes in all (per process).

    A suite's images are asked for again and again (page reloads, the next labeler of the
    same task); without it every view would be a download, and a slow first byte would
    tell a remote image from a stored one every time instead of once.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._items: OrderedDict[str, tuple[bytes, str]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, url: str) -> tuple[bytes, str] | None:
        with self._lock:
            found = self._items.get(url)
            if found is not None:
                self._items.move_to_end(url)
            return found

    def put(self, url: str, item: tuple[bytes, str]) -> None:
        if len(item[0]) > self.limit // 4:
            return
        with self._lock:
            if url in self._items:
                return
            self._items[url] = item
            self._size += len(item[0])
            while self._size > self.limit:
                _, (data, _type) = self._items.popitem(last=False)
                self._size -= len(data)


REMOTE_CACHE = _RemoteCache(limit=64 * 1024 * 1024)


def load_suite_image(found: SuiteImage) -> tuple[bytes, str]:
    """The bytes and content type of a located image (``NotFound`` when a remote image
    cannot be fetched or is not an image: the labeler sees a broken image either way)."""
    if found.storage_key is not None:
        return media.read_media_key(found.storage_key), found.content_type or ""
    cached = REMOTE_CACHE.get(found.url)
    if cached is not None:
        return cached
    from app.services.ml.inference import fetch_image_url  # (imports the ML helpers lazily)

    try:
        data = fetch_image_url(found.url)
        content_type = media.inspect_image(data, name="image")[0]
    except CrowdlabError:
        raise NotFound("No such image.") from None
    REMOTE_CACHE.put(found.url, (data, content_type))
    return data, content_type
