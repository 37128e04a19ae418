"""Toloka's ``GET /api/v1/requester``: who the token belongs to and the balance."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.compat.toloka.shapes import requester_json
from app.deps import ApiRequester, SessionDep

router = APIRouter(prefix="/api/v1", tags=["requester"])


@router.get("/requester", name="api:requester")
def get_requester(session: SessionDep, user: ApiRequester) -> dict[str, Any]:
    """The requester's id, public name and balance in dollars (from the ledger)."""
    return requester_json(session, requester=user)
