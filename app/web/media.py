"""Serves stored images to logged-in users by content hash."""

from __future__ import annotations

from fastapi import APIRouter, Response

from app.deps import CurrentUser, SessionDep
from app.services.media.store import get_media_by_sha, read_media

router = APIRouter(include_in_schema=False)


@router.get("/media/{name}", name="media:file")
def media_file(session: SessionDep, user: CurrentUser, name: str) -> Response:
    """An image by ``<sha256>.<ext>``; the hash says nothing about the task or its answer."""
    media = get_media_by_sha(session, sha256=name.split(".", 1)[0])
    return Response(
        read_media(media),
        media_type=media.content_type,
        headers={"Cache-Control": "private, max-age=86400, immutable"},
    )
