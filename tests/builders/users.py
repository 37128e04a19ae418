"""Users and logged-in clients."""

from __future__ import annotations

import itertools
import re

from fastapi.testclient import TestClient
from sqlmodel import Session

from app.db.models import Role, User
from app.services.accounts.users import create_api_token, create_user

PASSWORD = "correct horse battery"
_counter = itertools.count(1)


def make_user(session: Session, role: Role | str = Role.REQUESTER, **fields) -> User:
    """A user with a unique email and the shared test password."""
    n = next(_counter)
    fields.setdefault("email", f"{role}{n}@example.com")
    fields.setdefault("password", PASSWORD)
    return create_user(session, role=role, **fields)


def make_requester(session: Session, **fields) -> User:
    return make_user(session, Role.REQUESTER, **fields)


def make_labeler(session: Session, **fields) -> User:
    fields.setdefault("languages", ["EN"])
    return make_user(session, Role.LABELER, **fields)


def make_token(session: Session, user: User, name: str = "test") -> str:
    """A plain API token for the user."""
    return create_api_token(session, user=user, name=name)[1]


CSRF_RE = re.compile(r'name="csrf-token" content="([^"]+)"')


def csrf_of(client: TestClient, path: str = "/login") -> str:
    """The CSRF token of the client's session, read from a page's meta tag."""
    response = client.get(path)
    match = CSRF_RE.search(response.text)
    assert match, f"no csrf meta tag on {path}"
    return match.group(1)


def login(client: TestClient, user: User, password: str = PASSWORD) -> TestClient:
    """Log the client in as ``user``; later form posts send the CSRF header too."""
    token = csrf_of(client)
    response = client.post(
        "/login",
        data={"email": user.email, "password": password, "csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    client.headers["X-CSRF-Token"] = csrf_of(client, "/account")
    return client
