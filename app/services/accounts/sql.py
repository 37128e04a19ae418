"""Prebuilt statements of accounts: who is behind an API token."""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Integer, String, bindparam, column, text
from sqlmodel import select

from app.db.models import ApiToken, User

# --- who is asking -----------------------------------------------------------------------

USER_FOR_TOKEN = (
    select(User)
    .join(ApiToken, ApiToken.user_id == User.id)
    .where(
        ApiToken.token_hash == bindparam("token_hash"),
        ApiToken.revoked_at.is_(None),
        User.is_active.is_(True),
    )
)

# the labeler behind a token, as the labeling hot path needs it (no whole-row ORM load)
LABELER_FOR_TOKEN = text(
    "SELECT u.id, u.role, u.languages, u.adult_allowed FROM user_account u "
    "JOIN api_token t ON t.user_id = u.id "
    "WHERE t.token_hash = :token_hash AND t.revoked_at IS NULL AND u.is_active"
).columns(
    column("id", Integer), column("role", String), column("languages", JSON),
    column("adult_allowed", Boolean),
)  # fmt: skip
