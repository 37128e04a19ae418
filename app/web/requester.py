"""Requester console home: projects with their pools, and the balance."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from app.deps import CurrentRequester, SessionDep, verify_csrf
from app.services.money import ledger
from app.services.projects import lists
from app.web.lists import ListView, list_params
from app.web.templating import render

router = APIRouter(dependencies=[Depends(verify_csrf)], include_in_schema=False)


@router.get("/requester", name="requester:home")
def requester_home(request: Request, session: SessionDep, user: CurrentRequester):
    """The requester's projects, newest first, with pool counts by state (searchable, paged)."""
    params = list_params(request, lists.PROJECT_LIST)
    page = lists.page_projects(session, requester=user, params=params)
    counts = lists.count_pools_by_status(
        session, requester=user, project_ids=[p.id for p in page.items]
    )
    return render(
        request,
        "requester/home.html",
        {
            "projects": ListView(request, page, target="projects"),
            "pool_counts": counts,
            "balance": ledger.get_balance(session, user=user),
        },
    )
