"""Who am I: the token's user."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from app.deps import ApiUser

router = APIRouter(prefix="/api/v1", tags=["account"])


class MePublic(BaseModel):
    id: int
    email: str
    name: str
    role: str


@router.get("/me", response_model=MePublic, name="api:me")
def me(user: ApiUser) -> MePublic:
    """The account that owns the API token."""
    return MePublic(id=user.id, email=user.email, name=user.name, role=user.role)
