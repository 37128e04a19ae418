"""Job progress partial, polled by every progress bar, and cancel."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from app.deps import CurrentUser, SessionDep, verify_csrf
from app.services.jobs import records as jobs
from app.web.templating import render

router = APIRouter(dependencies=[Depends(verify_csrf)], include_in_schema=False)


@router.get("/jobs/{job_id}/progress", name="jobs:progress")
def job_progress(request: Request, session: SessionDep, user: CurrentUser, job_id: int):
    """The progress bar of one of the user's jobs."""
    job = jobs.get_job(session, owner=user, job_id=job_id)
    headers = {"HX-Trigger": "job-done"} if job.done else None
    return render(request, "components/_job_progress.html", {"job": job}, headers=headers)


@router.post("/jobs/{job_id}/cancel", name="jobs:cancel")
def job_cancel(request: Request, session: SessionDep, user: CurrentUser, job_id: int):
    """Ask a job to stop."""
    job = jobs.request_cancel(session, owner=user, job_id=job_id)
    return render(request, "components/_job_progress.html", {"job": job})
