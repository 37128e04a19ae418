"""First start: offer to fill the empty instance with demo data, then show its progress."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from app.deps import OptionalUser, SessionDep, verify_csrf
from app.services.demo import scenario as demo
from app.web.templating import render

router = APIRouter(dependencies=[Depends(verify_csrf)], include_in_schema=False)


@router.get("/demo/offer", name="demo:offer")
def offer(request: Request, session: SessionDep, user: OptionalUser):
    """The home page's "fill with demo data" box: only while the instance has no accounts."""
    job = demo.latest_demo_job(session)
    if job is not None and not job.done:
        return render(request, "demo/_offer.html", {"job": job})
    if user is not None or demo.has_users(session):
        return HTMLResponse("")
    return render(request, "demo/_offer.html", {"job": None})


@router.post("/demo", name="demo:start")
def start(request: Request, session: SessionDep, train: str = Form("")):
    """Queue the demo job and go to its progress page."""
    job = demo.start_demo_job(session, train=train == "on")
    return RedirectResponse(request.url_for("demo:status", job_id=job.id), status_code=303)


@router.get("/demo/{job_id}", name="demo:status")
def status(request: Request, session: SessionDep, job_id: int):
    """The demo's progress; when done, the accounts to log in with."""
    job = demo.get_demo_job(session, job_id=job_id)
    context = {"job": job, "result": job.result if job.done else None}
    return render(request, "demo/status.html", context, partial="demo/_status.html")
