"""Manual review in the console: suites with filters, accept/reject, review by file."""

from __future__ import annotations

import math

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import UploadFile

from app.deps import CurrentRequester, SessionDep, verify_csrf
from app.errors import UploadRejected, ValidationFailed
from app.services.quality import overlap, review
from app.web.pool_nav import pool_nav
from app.web.templating import flash, is_htmx, render

router = APIRouter(dependencies=[Depends(verify_csrf)], include_in_schema=False)

STATUSES = ("submitted", "accepted", "rejected")
PER_PAGE = 25


def _int_or_none(raw: str | None) -> int | None:
    raw = (raw or "").strip()
    return int(raw) if raw.isdigit() else None


@router.get("/requester/pools/{pool_id}/review", name="quality:review")
def review_page(
    request: Request,
    session: SessionDep,
    user: CurrentRequester,
    pool_id: int,
    labeler: str | None = None,
    status: str | None = None,
    page: int = 1,
):
    """Suites to review, filtered by labeler and status."""
    pool = overlap.owned_pool(session, requester_id=user.id, pool_id=pool_id)
    status = status if status in STATUSES else None
    labeler_id = _int_or_none(labeler)
    rows, total = review.list_pool_assignments(
        session,
        requester=user,
        pool_id=pool_id,
        labeler_id=labeler_id,
        status=status,
        page=page,
        per_page=PER_PAGE,
    )
    ctx = {
        **pool_nav(session, user, pool, "review"),
        "names": review.labeler_names(session, [a.labeler_id for a in rows]),
        "pool": pool,
        "assignments": rows,
        "answers": review.suite_answers(session, [a.id for a in rows]),
        "total": total,
        "page": page,
        "pages": max(1, math.ceil(total / PER_PAGE)),
        "statuses": STATUSES,
        "filter_labeler": labeler_id,
        "filter_status": status,
    }
    return render(request, "requester/quality/review.html", ctx)


def _row(request: Request, session, assignment, pool, error: str | None = None, status_code=200):
    ctx = {
        "names": review.labeler_names(session, [assignment.labeler_id]),
        "pool": pool,
        "a": assignment,
        "answers": review.suite_answers(session, [assignment.id]),
        "row_error": error,
    }
    return render(request, "requester/quality/_review_row.html", ctx, status_code=status_code)


async def _decide(request: Request, session, user, assignment_id: int, verdict: str):
    form = await request.form()
    comment = str(form.get("comment") or "")
    assignment, pool = review.get_reviewable(session, requester=user, assignment_id=assignment_id)
    try:
        if verdict == "accept":
            assignment = review.accept_assignment(
                session, requester=user, assignment_id=assignment_id, comment=comment
            )
        else:
            assignment = review.reject_assignment(
                session, requester=user, assignment_id=assignment_id, comment=comment
            )
    except ValidationFailed as exc:
        if is_htmx(request):
            return _row(request, session, assignment, pool, exc.message, status_code=422)
        flash(request, exc.message, "error")
    else:
        if is_htmx(request):
            return _row(request, session, assignment, pool)
        flash(request, f"Suite {assignment_id} {assignment.status}.", "success")
    return RedirectResponse(request.url_for("quality:review", pool_id=pool.id), status_code=303)


@router.post("/requester/assignments/{assignment_id}/accept", name="quality:accept")
async def accept(request: Request, session: SessionDep, user: CurrentRequester, assignment_id: int):
    """Accept (and pay) one suite."""
    return await _decide(request, session, user, assignment_id, "accept")


@router.post("/requester/assignments/{assignment_id}/reject", name="quality:reject")
async def reject(request: Request, session: SessionDep, user: CurrentRequester, assignment_id: int):
    """Reject one suite with a comment the labeler sees."""
    return await _decide(request, session, user, assignment_id, "reject")


@router.get("/requester/pools/{pool_id}/review.tsv", name="quality:review_tsv")
def review_file(session: SessionDep, user: CurrentRequester, pool_id: int) -> Response:
    """Submitted suites as a review file to fill with ACCEPT:verdict and ACCEPT:comment."""
    text = review.review_tsv(session, requester=user, pool_id=pool_id)
    return Response(
        text,
        media_type="text/tab-separated-values; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="pool-{pool_id}-review.tsv"'},
    )


@router.post("/requester/pools/{pool_id}/review/upload", name="quality:review_upload")
async def upload_review(
    request: Request, session: SessionDep, user: CurrentRequester, pool_id: int
):
    """Apply a filled review file; bad rows are listed and nothing is applied."""
    form = await request.form()
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        flash(request, "Choose the review file to upload.", "error")
        return RedirectResponse(request.url_for("quality:review", pool_id=pool_id), status_code=303)
    data = await upload.read()
    try:
        counts = review.apply_review_file(session, requester=user, pool_id=pool_id, data=data)
    except UploadRejected as exc:
        pool = overlap.owned_pool(session, requester_id=user.id, pool_id=pool_id)
        rows, total = review.list_pool_assignments(
            session, requester=user, pool_id=pool_id, per_page=PER_PAGE
        )
        ctx = {
            **pool_nav(session, user, pool, "review"),
            "names": review.labeler_names(session, [a.labeler_id for a in rows]),
            "pool": pool,
            "assignments": rows,
            "answers": review.suite_answers(session, [a.id for a in rows]),
            "total": total,
            "page": 1,
            "pages": max(1, math.ceil(total / PER_PAGE)),
            "statuses": STATUSES,
            "filter_labeler": None,
            "filter_status": None,
            "upload_error": exc,
        }
        return render(request, "requester/quality/review.html", ctx, status_code=422)
    flash(
        request,
        f"Review file applied: {counts['accepted']} accepted, {counts['rejected']} rejected, "
        f"{counts['unchanged']} unchanged.",
        "success",
    )
    return RedirectResponse(request.url_for("quality:review", pool_id=pool_id), status_code=303)
