"""Passwords (argon2, a strength policy), API and session tokens (random, stored hashed)
and CSRF tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from zxcvbn import zxcvbn

from app.settings import get_settings

TOKEN_PREFIX = "cl_"
CSRF_SESSION_KEY = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FORM_FIELD = "csrf_token"


@lru_cache
def _hasher() -> PasswordHasher:
    settings = get_settings()
    return PasswordHasher(
        time_cost=settings.argon2_time_cost, memory_cost=settings.argon2_memory_cost
    )


def hash_password(password: str) -> str:
    """An argon2id hash of the password."""
    return _hasher().hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether the password matches the stored hash."""
    try:
        return _hasher().verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


@lru_cache
def _dummy_hash() -> str:
    return _hasher().hash(secrets.token_urlsafe(16))


def burn_password_check(password: str) -> None:
    """Spend the time of one password check, for an unknown account (equal timing)."""
    verify_password(_dummy_hash(), password)


# zxcvbn's cost grows with the input; the tail of a very long password adds nothing.
_ZXCVBN_CHARS = 100


def password_problem(password: str, *, user_inputs: list[str] = ()) -> str | None:
    """Why the password is too weak (too short, common or guessable), or ``None``."""
    settings = get_settings()
    if len(password) < settings.min_password_length:
        return f"Use at least {settings.min_password_length} characters."
    if settings.min_password_score:
        words = [word for word in user_inputs if word]
        result = zxcvbn(password[:_ZXCVBN_CHARS], user_inputs=words)
        if result["score"] < settings.min_password_score:
            hint = result["feedback"].get("warning") or "It is too easy to guess."
            return f"Choose a less common password. {hint}".strip()
    return None


def new_session_token() -> str:
    """A fresh web session id, kept in the signed cookie; the database keeps its hash."""
    return secrets.token_urlsafe(32)


def new_api_token() -> str:
    """A fresh API token, shown to its owner once."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """The SHA-256 of a token (tokens are high-entropy, so no KDF is needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_csrf_token() -> str:
    """A random CSRF token kept in the signed session."""
    return secrets.token_urlsafe(32)


def csrf_matches(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison of the session's CSRF token and the submitted one."""
    if not expected or not given:
        return False
    return hmac.compare_digest(expected, given)


# the signed session cookie's key for the server-side session id
SESSION_ID_KEY = "sid"


def token_from_headers(request) -> str | None:
    """The API token of ``Authorization: OAuth|Bearer|ApiKey <token>`` or a Custom Vision key."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() in ("oauth", "bearer", "apikey") and value.strip():
        return value.strip()
    for name in ("training-key", "prediction-key"):
        if request.headers.get(name):
            return request.headers[name].strip()
    return None
