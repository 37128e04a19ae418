"""Request dependencies: database session, current user per role, CSRF check."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel import Session

from app.db.engine import new_session, write_from_next_transaction
from app.db.models import Role, User
from app.errors import Forbidden, Unauthorized
from app.security import (
    CSRF_FORM_FIELD,
    CSRF_HEADER,
    CSRF_SESSION_KEY,
    SESSION_ID_KEY,
    csrf_matches,
    token_from_headers,
)
from app.services.accounts.users import (
    TokenLabeler,
    labeler_for_token,
    user_for_token,
    user_for_web_session,
)

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


_WRITES_AFTER_AUTH = "crowdlab_writes_after_auth"


def get_session(request: Request) -> Iterator[Session]:
    """One session per request, able to write atomically (SQLite: serialised writers).

    On SQLite a request reads without taking the write lock, and a GET/HEAD/OPTIONS
    request takes it only if it writes, so pages and media never queue behind an import
    or a suite being taken. A state-changing request takes it when its route begins,
    once authentication has read the user (``_authenticated``), so that the route's
    reads and writes are serialised (the assignment engine relies on that)."""
    session = new_session(write=True, lazy=True)
    if request.method not in SAFE_METHODS:
        session.info[_WRITES_AFTER_AUTH] = True
    try:
        yield session
    finally:
        session.close()


SessionDep = Annotated[Session, Depends(get_session)]


def _authenticated(session: Session) -> None:
    """Authentication has read what it needs: a state-changing request's next
    transaction (its route's) takes the write lock from the start."""
    if session.info.pop(_WRITES_AFTER_AUTH, False):
        write_from_next_transaction(session)


class LoginRequired(Exception):
    """A web page needs a logged-in user; rendered as a redirect to the log-in page."""


def _session_user(request: Request, session: Session) -> User | None:
    """The user of the cookie's server-side session (ended by log-out or a password change)."""
    session_id = request.session.get(SESSION_ID_KEY)
    user = user_for_web_session(session, session_id) if isinstance(session_id, str) else None
    if user is None:
        request.session.pop(SESSION_ID_KEY, None)
    request.state.user = user
    _authenticated(session)
    return user


def _web_user(request: Request, session: SessionDep) -> User:
    user = _session_user(request, session)
    if user is None:
        raise LoginRequired()
    return user


def optional_web_user(request: Request, session: SessionDep) -> User | None:
    """The logged-in user, if any (for pages anyone may see)."""
    return _session_user(request, session)


def _require_role(*roles: Role):
    def dependency(user: Annotated[User, Depends(_web_user)]) -> User:
        if user.role not in roles:
            raise Forbidden("This page is not available to your account type.")
        return user

    return dependency


CurrentUser = Annotated[User, Depends(_web_user)]
CurrentRequester = Annotated[User, Depends(_require_role(Role.REQUESTER, Role.ADMIN))]
CurrentLabeler = Annotated[User, Depends(_require_role(Role.LABELER))]
OptionalUser = Annotated[User | None, Depends(optional_web_user)]


def _required_token(request: Request) -> str:
    token = token_from_headers(request)
    if not token:
        raise Unauthorized("Send an API token: 'Authorization: OAuth <token>'.")
    return token


def _api_user(request: Request, session: SessionDep) -> User:
    user = user_for_token(session, _required_token(request))
    request.state.user = user
    _authenticated(session)
    return user


def _require_api_role(*roles: Role):
    def dependency(user: Annotated[User, Depends(_api_user)]) -> User:
        if user.role not in roles:
            raise Forbidden("This endpoint is not available to your account type.")
        return user

    return dependency


ApiUser = Annotated[User, Depends(_api_user)]
ApiRequester = Annotated[User, Depends(_require_api_role(Role.REQUESTER, Role.ADMIN))]
ApiLabeler = Annotated[User, Depends(_require_api_role(Role.LABELER))]


@contextmanager
def api_labeler_session(request: Request) -> Iterator[tuple[Session, TokenLabeler]]:
    """A writing session and the labeler of the request's API token, for hot-path routes
    that do all their work in one worker-thread call (``ApiLabeler`` costs several)."""
    token = _required_token(request)
    session = new_session(write=True)
    try:
        request.state.user = labeler = labeler_for_token(session, token)
        yield session, labeler
    finally:
        session.close()


async def verify_csrf(request: Request) -> None:
    """Refuse a state-changing web request without the session's CSRF token (403)."""
    if request.method in SAFE_METHODS:
        return
    expected = request.session.get(CSRF_SESSION_KEY)
    given = request.headers.get(CSRF_HEADER) or request.query_params.get(CSRF_FORM_FIELD)
    if not given:
        # Only small url-encoded forms carry the token in the body; a multipart body needs
        # it in the header or the query string (checked before the body is read).
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("application/x-www-form-urlencoded"):
            form = await request.form()
            value = form.get(CSRF_FORM_FIELD)
            given = value if isinstance(value, str) else None
    if not csrf_matches(expected, given):
        raise Forbidden(
            "The form expired or was not sent from this site. Reload the page and try again."
        )
