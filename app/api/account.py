"""Who am I: the token's user; changing the account's password."""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel

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
