"""Requester console home: projects with their pools, and the balance."""

from __future__ import annotations

from collections import Counter

from fastapi import APIRouter, Depends, Request

from app.deps import CurrentRequester, SessionDep, verify_csrf
from app.services.money import ledger
from app.services.projects import pools, projects
from app.web.templating import render

router = APIRouter(dependencies=[Depends(verify_csrf)], include_in_schema=False)


@router.get("/requester", name="requester:home")
def requester_home(request: Request, session: SessionDep, user: CurrentRequester):
    """The requester's projects, newest first, with pool counts by state."""
    items = list(reversed(projects.list_projects(session, requester=user)))
    counts: dict[int, Counter] = {}
    for pool in pools.list_pools(session, requester=user):
        counts.setdefault(pool.project_id, Counter())[pool.status] += 1
    return render(
        request,
        "requester/home.html",
        {
            "projects": items,
            "pool_counts": counts,
            "balance": ledger.get_balance(session, user=user),
        },
    )
