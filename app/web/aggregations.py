"""Requester pages: run an aggregation of a pool, list runs, see one run, download TSVs."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from starlette.routing import NoMatchFound

from app.deps import CurrentRequester, SessionDep, verify_csrf
from app.errors import ValidationFailed
from app.services.aggregations import results
from app.services.aggregations import runs as svc
from app.web.lists import ListView, list_params
from app.web.pool_nav import pool_nav
from app.web.templating import flash, render

router = APIRouter(dependencies=[Depends(verify_csrf)], include_in_schema=False)

UNANSWERED_SHOWN = 100


def _pool_url(request: Request, pool_id: int) -> str | None:
    """The pool page, when the console has one."""
    try:
        return str(request.url_for("pools:detail", pool_id=pool_id))
    except NoMatchFound:
        return None


def _nav(request: Request, session, user, pool) -> dict:
    """The pool's breadcrumbs and tabs, where the console serves the pool's pages."""
    if _pool_url(request, pool.id) is None:
        return {}
    return pool_nav(session, user, pool, "aggregations")


def _list_page(
    request: Request, session, user, pool_id: int, *, form=None, errors=None, status=200
):
    pool = svc.get_pool_for_aggregation(session, requester=user, pool_id=pool_id)
    params = list_params(request, svc.RUN_LIST)
    page = svc.page_runs(session, requester=user, pool_id=pool.id, params=params)
    path = request.url_for("aggregations:list", pool_id=pool.id).path
    context = {
        **_nav(request, session, user, pool),
        "pool": pool,
        "pool_url": _pool_url(request, pool.id),
        "runs": ListView(request, page, target="runs", path=path),
        "durations": {run.id: svc.run_duration_seconds(run) for run in page.items},
        "methods": svc.METHOD_NAMES,
        "method_name": svc.method_name,
        "form": form or {"method": svc.DEFAULT_METHOD, "use_known": True},
        "errors": errors or {},
    }
    return render(request, "requester/aggregations/list.html", context, status_code=status)


@router.get("/requester/pools/{pool_id}/aggregations", name="aggregations:list")
def aggregations_list(request: Request, session: SessionDep, user: CurrentRequester, pool_id: int):
    """The pool's aggregation runs and the form that starts one."""
    return _list_page(request, session, user, pool_id)


@router.post("/requester/pools/{pool_id}/aggregations", name="aggregations:start")
def aggregations_start(
    request: Request,
    session: SessionDep,
    user: CurrentRequester,
    pool_id: int,
    method: str = Form(svc.DEFAULT_METHOD),
    use_known: str | None = Form(None),
):
    """Start a run; back to the form with inline errors when the input is bad."""
    form = {"method": method, "use_known": bool(use_known)}
    try:
        run = svc.start_aggregation(
            session, requester=user, pool_id=pool_id, method=method, use_known=bool(use_known)
        )
    except ValidationFailed as exc:
        return _list_page(request, session, user, pool_id, form=form, errors=exc.errors, status=422)
    flash(request, f"{svc.method_name(run.method)} aggregation started.", "success")
    url = request.url_for("aggregations:detail", pool_id=run.pool_id, run_id=run.id)
    return RedirectResponse(str(url), status_code=303)


@router.get("/requester/pools/{pool_id}/aggregations/{run_id}", name="aggregations:detail")
def aggregation_detail(
    request: Request, session: SessionDep, user: CurrentRequester, pool_id: int, run_id: int
):
    """One run: progress, figures, confidence histogram, unanswered tasks, worker quality."""
    run = svc.get_run(session, requester=user, run_id=run_id, pool_id=pool_id)
    pool = svc.get_pool_for_aggregation(session, requester=user, pool_id=pool_id)
    finished = run.status == "succeeded"
    unanswered = []
    if finished:
        for index, row in enumerate(svc.iter_labels(session, run=run, answered=False)):
            if index >= UNANSWERED_SHOWN:
                break
            unanswered.append(row)
    job = svc.get_run_job(session, run=run)
    context = {
        **_nav(request, session, user, pool),
        "pool": pool,
        "pool_url": _pool_url(request, pool.id),
        "run": run,
        "job": job,
        "timings": (job.result or {}).get("timings", {}) if job else {},
        "calibration": (job.result or {}).get("calibration") if job and finished else None,
        "method_name": svc.method_name(run.method),
        "duration": svc.run_duration_seconds(run),
        "finished": finished,
        "histogram": svc.confidence_histogram(session, run=run) if finished else [],
        "unanswered": unanswered,
        "unanswered_shown": UNANSWERED_SHOWN,
        "workers": svc.list_worker_quality(session, run=run) if finished else [],
    }
    return render(request, "requester/aggregations/detail.html", context)


TRUE = ("1", "on", "true", "yes")


def _result_filters(request: Request, labels: list[str]):
    """The results view's filters from the URL: unknown labels are dropped, a confidence
    that is not a percentage is ignored with a message (never an error page)."""
    query = request.query_params
    label = query.get("label") if query.get("label") in labels else None
    below_text = (query.get("below") or "").strip().rstrip("%").strip()
    below, error = None, None
    if below_text:
        try:
            percent = float(below_text)
        except ValueError:
            percent = float("nan")
        if 0 < percent <= 100:
            below = percent / 100
        else:
            error = "Confidence below: give a percentage from 1 to 100 (ignored)."
            below_text = ""
    filters = results.ResultFilters(
        label=label,
        below=below,
        disagreement=query.get("disagreement") in TRUE,
        control=query.get("control") in TRUE,
    )
    shown = {
        "label": label,
        "below": f"{below * 100:g}" if below is not None else None,
        "disagreement": "1" if filters.disagreement else None,
        "control": "1" if filters.control else None,
    }
    return filters, shown, error


@router.get("/requester/pools/{pool_id}/aggregations/{run_id}/results", name="aggregations:results")
def aggregation_results(
    request: Request, session: SessionDep, user: CurrentRequester, pool_id: int, run_id: int
):
    """Per-image results: label, confidence, answers by labeler; filtered, sorted, paged."""
    pool = svc.get_pool_for_aggregation(session, requester=user, pool_id=pool_id)
    labels = results.list_labels(session, pool=pool)
    filters, shown, error = _result_filters(request, labels)
    run, page = results.page_results(
        session,
        requester=user,
        pool_id=pool_id,
        run_id=run_id,
        filters=filters,
        params=list_params(request, results.RESULT_LIST),
    )
    context = {
        "pool": pool,
        "pool_url": _pool_url(request, pool.id),
        "run": run,
        "method_name": svc.method_name(run.method),
        "labels": labels,
        "filters": filters,
        "filter_error": error,
        "view": ListView(request, page, target="results", filters=shown),
    }
    return render(request, "requester/aggregations/results.html", context)


@router.get("/requester/pools/{pool_id}/results", name="aggregations:latest_results")
def latest_results(request: Request, session: SessionDep, user: CurrentRequester, pool_id: int):
    """The newest finished aggregation's results, or the aggregation page when there is none."""
    run = results.get_latest_finished_run(session, requester=user, pool_id=pool_id)
    if run is None:
        flash(request, "No finished aggregation yet: run one to see the results.", "info")
        return RedirectResponse(str(request.url_for("aggregations:list", pool_id=pool_id)), 303)
    url = request.url_for("aggregations:results", pool_id=pool_id, run_id=run.id)
    return RedirectResponse(str(url), status_code=303)


def _tsv(body: str, filename: str) -> Response:
    return Response(
        body,
        media_type="text/tab-separated-values; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get(
    "/requester/pools/{pool_id}/aggregations/{run_id}/results.tsv", name="aggregations:download"
)
def aggregation_download(
    request: Request, session: SessionDep, user: CurrentRequester, pool_id: int, run_id: int
):
    """The aggregated TSV: one row per answered general task."""
    run = svc.get_run(session, requester=user, run_id=run_id, pool_id=pool_id)
    body = svc.build_results_tsv(session, run=run)
    return _tsv(body, f"pool-{pool_id}-aggregation-{run.id}-{run.method}.tsv")


@router.get(
    "/requester/pools/{pool_id}/aggregations/{run_id}/unanswered.tsv",
    name="aggregations:unanswered",
)
def aggregation_unanswered(
    request: Request, session: SessionDep, user: CurrentRequester, pool_id: int, run_id: int
):
    """The general tasks with no usable answer."""
    run = svc.get_run(session, requester=user, run_id=run_id, pool_id=pool_id)
    body = svc.build_unanswered_tsv(session, run=run)
    return _tsv(body, f"pool-{pool_id}-aggregation-{run.id}-unanswered.tsv")
