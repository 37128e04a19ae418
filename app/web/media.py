"""Serves stored images: to their owner, to holders of a signed URL, and a suite's images
to the labeler working on it (through the suite's opaque addresses, never by hash)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from app.db.engine import new_session
from app.errors import NotFound, Unauthorized
from app.security import SESSION_ID_KEY, token_from_headers
from app.services.accounts.users import user_for_token, user_for_web_session
from app.services.labeling import images as suite_images
from app.services.media.store import (
    get_media_by_sha,
    get_owned_media,
    read_media,
    signature_allows,
)
from app.settings import REPO_ROOT

router = APIRouter(include_in_schema=False)


def _requester_id(request: Request, session) -> int | None:
    """The logged-in user's id (the cookie's server-side session), or the API token's user."""
    session_id = request.session.get(SESSION_ID_KEY)
    user = user_for_web_session(session, session_id) if isinstance(session_id, str) else None
    if user is not None:
        return user.id
    token = token_from_headers(request)
    if token:
        try:
            return user_for_token(session, token).id
        except Unauthorized:
            return None
    return None


@router.get("/media/{name}", name="media:file")
def media_file(request: Request, name: str, sig: str | None = None) -> Response:
    """An image by ``<sha256>.<ext>``: for the requester who stored it, or with a current
    signature. Everyone else (labelers included) gets 404."""
    sha = name.split(".", 1)[0]
    # reads only: on SQLite this takes no write lock (one unique-index lookup)
    with new_session(write=False) as session:
        if signature_allows(sha, sig):
            media = get_media_by_sha(session, sha256=sha)
        else:
            owner_id = _requester_id(request, session)
            if owner_id is None:
                raise NotFound("No such image.")
            media = get_owned_media(session, owner_id=owner_id, sha256=sha)
        session.expunge(media)
    return Response(
        read_media(media),
        media_type=media.content_type,
        headers={"Cache-Control": "private, max-age=86400, immutable"},
    )


@router.get("/s/{token}/{position}", name="labeler:image")
def suite_image(request: Request, token: str, position: int) -> Response:
    """The image of one task of a suite, for the labeler of that active suite.

    Stored and remote images alike are streamed from here with the same headers, so
    nothing in the address or the response tells a control task from a general one.
    """
    with new_session(write=False) as session:
        user_id = _requester_id(request, session)
        if user_id is None:
            raise NotFound("No such image.")
        found = suite_images.locate_suite_image(
            session, token=token, position=position, labeler_id=user_id
        )
    # (the session is closed before a remote image is fetched)
    data, content_type = suite_images.load_suite_image(found)
    return Response(data, media_type=content_type, headers=suite_images.HEADERS)


@router.get("/favicon.ico", name="favicon")
def favicon() -> Response:
    """The site's icon, for browsers that ask for it before reading the page."""
    icon = REPO_ROOT / "static" / "img" / "favicon.svg"
    return Response(
        icon.read_bytes(),
        media_type="image/svg+xml",
        headers={"Cache-Control": "public, max-age=86400"},
    )
