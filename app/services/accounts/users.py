"""Accounts: sign-up, log-in, API tokens."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlmodel import Session, select

from app.db.models import ApiToken, Role, User
from app.db.raw import rows
from app.db.types import utcnow
from app.errors import Conflict, Forbidden, NotFound, Unauthorized, ValidationFailed
from app.security import hash_password, hash_token, new_api_token, verify_password
from app.services.accounts import sql
from app.services.accounts.sql import USER_FOR_TOKEN

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD = 8


def create_user(
    session: Session,
    *,
    email: str,
    password: str,
    role: Role | str,
    name: str = "",
    languages: list[str] | None = None,
    adult_allowed: bool = False,
) -> User:
    """Create an account after validating email, password and role."""
    email = email.strip().lower()
    errors: dict[str, str] = {}
    if not EMAIL_RE.match(email):
        errors["email"] = "Enter a valid email address."
    if len(password) < MIN_PASSWORD:
        errors["password"] = f"Use at least {MIN_PASSWORD} characters."
    try:
        role = Role(role)
    except ValueError:
        errors["role"] = "Role must be requester, labeler or admin."
    if errors:
        raise ValidationFailed("Please fix the highlighted fields.", errors=errors)
    if session.exec(select(User).where(User.email == email)).first():
        raise ValidationFailed(
            "That email is already registered.", errors={"email": "Already registered."}
        )
    user = User(
        email=email,
        name=name.strip() or email.split("@")[0],
        role=role,
        password_hash=hash_password(password),
        languages=[code.strip().upper() for code in (languages or []) if code.strip()],
        adult_allowed=adult_allowed,
    )
    session.add(user)
    session.commit()
    session.refresh(user)
    return user


def authenticate(session: Session, *, email: str, password: str) -> User:
    """The active user with these credentials, or ``Unauthorized``."""
    user = session.exec(select(User).where(User.email == email.strip().lower())).first()
    if user is None or not user.is_active or not verify_password(user.password_hash, password):
        raise Unauthorized("Wrong email or password.")
    return user


def get_user(session: Session, user_id: int) -> User | None:
    """The active user with this id, if any."""
    user = session.get(User, user_id)
    return user if user is not None and user.is_active else None


def update_labeler_profile(
    session: Session, *, user: User, languages: list[str], adult_allowed: bool, name: str
) -> User:
    """Change a labeler's audience attributes (languages, adult content opt-in)."""
    user.languages = [code.strip().upper() for code in languages if code.strip()]
    user.adult_allowed = adult_allowed
    if name.strip():
        user.name = name.strip()
    session.add(user)
    session.commit()
    return user


def create_api_token(session: Session, *, user: User, name: str) -> tuple[ApiToken, str]:
    """Create a named token; returns the row and the plain token (shown once)."""
    name = name.strip()
    if not name:
        raise ValidationFailed("Give the token a name.", errors={"name": "Required."})
    plain = new_api_token()
    token = ApiToken(
        user_id=user.id, name=name[:120], token_hash=hash_token(plain), prefix=plain[:10]
    )
    session.add(token)
    session.commit()
    session.refresh(token)
    return token, plain


def list_api_tokens(session: Session, *, user: User) -> list[ApiToken]:
    """The user's tokens, newest first."""
    query = select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id.desc())
    return list(session.exec(query))


def revoke_api_token(session: Session, *, user: User, token_id: int) -> ApiToken:
    """Revoke one of the user's tokens (someone else's id → ``NotFound``)."""
    token = session.get(ApiToken, token_id)
    if token is None or token.user_id != user.id:
        raise NotFound("No such token.")
    if token.revoked_at is not None:
        raise Conflict("This token is already revoked.")
    token.revoked_at = utcnow()
    session.add(token)
    session.commit()
    return token


@dataclass(frozen=True)
class TokenLabeler:
    """The labeler behind an API token, with what taking and submitting suites read of a
    ``User`` (id, audience-filter fields): one narrow row instead of an ORM load."""

    id: int
    role: str
    languages: list[str]
    adult_allowed: bool


def labeler_for_token(session: Session, plain: str) -> TokenLabeler:
    """The active labeler owning a valid, unrevoked token; ``Unauthorized`` or
    ``Forbidden`` (another kind of account) otherwise."""
    found = rows(session.connection(), sql.LABELER_FOR_TOKEN, {"token_hash": hash_token(plain)})
    if not found:
        raise Unauthorized("Invalid or revoked API token.")
    labeler = TokenLabeler(*found[0])
    if labeler.role != Role.LABELER:
        raise Forbidden("This endpoint is not available to your account type.")
    return labeler


def user_for_token(session: Session, plain: str) -> User:
    """The active owner of a valid, unrevoked token, or ``Unauthorized``."""
    user = session.exec(USER_FOR_TOKEN, params={"token_hash": hash_token(plain)}).first()
    if user is None:
        raise Unauthorized("Invalid or revoked API token.")
    return user
