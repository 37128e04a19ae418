"""Who am I: the token's user; changing the account's password; the account's API tokens."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from app.deps import ApiUser, SessionDep
from app.services.accounts import users

router = APIRouter(prefix="/api/v1", tags=["account"])


class MePublic(BaseModel):
    id: int
    email: str
    name: str
    role: str


class PasswordChange(BaseModel):
    current_password: str
    new_password: str


@router.get("/me", response_model=MePublic, name="api:me")
def me(user: ApiUser) -> MePublic:
    """The account that owns the API token."""
    return MePublic(id=user.id, email=user.email, name=user.name, role=user.role)


@router.post("/me/password", status_code=204, name="api:me_password")
def change_password(body: PasswordChange, session: SessionDep, user: ApiUser) -> Response:
    """Set a new password (the current one is required); logs out every browser session.
    API tokens keep working: revoke them one by one."""
    users.change_password(session, user=user, current=body.current_password, new=body.new_password)
    return Response(status_code=204)


class TokenCreate(BaseModel):
    name: str


class TokenPublic(BaseModel):
    id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class TokenCreated(TokenPublic):
    token: str = Field(description="The token itself; shown in this answer only.")


def _token_public(token) -> dict:
    return {
        "id": token.id,
        "name": token.name,
        "prefix": token.prefix,
        "created_at": token.created_at,
        "last_used_at": token.last_used_at,
        "revoked_at": token.revoked_at,
    }


@router.get("/me/tokens", response_model=list[TokenPublic], name="api:me_tokens")
def list_tokens(session: SessionDep, user: ApiUser):
    """The account's API tokens, newest first (never the tokens themselves)."""
    return [_token_public(t) for t in users.list_api_tokens(session, user=user)]


@router.post(
    "/me/tokens", response_model=TokenCreated, status_code=201, name="api:me_tokens_create"
)
def create_token(body: TokenCreate, session: SessionDep, user: ApiUser):
    """Create another token for the account; the answer is the only time it is shown."""
    token, plain = users.create_api_token(session, user=user, name=body.name)
    return {**_token_public(token), "token": plain}


@router.delete("/me/tokens/{token_id}", status_code=204, name="api:me_tokens_revoke")
def revoke_token(token_id: int, session: SessionDep, user: ApiUser) -> Response:
    """Revoke one of the account's tokens (it stops working at once)."""
    users.revoke_api_token(session, user=user, token_id=token_id)
    return Response(status_code=204)
