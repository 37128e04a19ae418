"""Requester console: pool settings, budget review and launch, close, archive, live progress."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from app.db.models import Pool
from app.deps import CurrentRequester, SessionDep, verify_csrf
from app.errors import Conflict, InsufficientFunds, ValidationFailed
from app.services.ml import collections as ml_collections
from app.services.ml import pool_retraining, trained_models
from app.services.projects import (
    control_tasks,
    overlap_savings,
    pool_model,
    pools,
    progress,
    projects,
    reservation,
)
from app.services.projects.pool_dynamic import MAX_RETRAIN_EVERY
from app.services.quality import skills
from app.settings import get_settings
from app.web.forms import parse_int, parse_money_cents
from app.web.templating import flash, render

router = APIRouter(dependencies=[Depends(verify_csrf)], include_in_schema=False)

DEFAULT_FORM = {
    "name": "",
    "overlap": "3",
    "price": "0.05",
    "general_per_suite": "9",
    "control_per_suite": "1",
    "time_limit_seconds": "600",
    "review_period_days": "7",
    "languages": "",
    "min_rating": "",
    "quality_preset": "on",
    "captcha_frequency": "",
    "max_overlap": "",
    "min_confidence": "0.8",
    "answer_weight_skill_id": "",
    "model_id": "",
    "model_retrain_every": "",
    "model_retrain_collection_id": "",
}


def _values_of(pool: Pool) -> dict:
    return {
        "name": pool.name,
        "public_description": pool.public_description,
        "private_comment": pool.private_comment,
        "overlap": str(pool.overlap),
        "price": f"{pool.reward_cents / 100:.2f}",
        "general_per_suite": str(pool.general_per_suite),
        "control_per_suite": str(pool.control_per_suite),
        "time_limit_seconds": str(pool.time_limit_seconds),
        "adult_content": "on" if pool.adult_content else "",
        "languages": ", ".join(pool.filter_languages),
        "min_rating": "" if pool.min_rating is None else str(pool.min_rating),
        "review_manually": "" if pool.auto_accept else "on",
        "review_period_days": str(pool.review_period_days),
        "quality_preset": "",
        "captcha_frequency": pool.captcha_frequency or "",
        "max_overlap": "" if pool.max_overlap is None else str(pool.max_overlap),
        "min_confidence": "0.8" if pool.min_confidence is None else f"{pool.min_confidence:g}",
        "answer_weight_skill_id": str(pool.answer_weight_skill_id or ""),
        "model_id": str(pool.model_id or ""),
        "model_retrain_every": str(pool.model_retrain_every or ""),
        "model_retrain_collection_id": str(pool.model_retrain_collection_id or ""),
    }


def _parse(form) -> tuple[dict, dict, dict[str, str]]:
    """Form fields → (raw values to re-show, service settings, errors)."""
    raw = {
        key: (form.get(key) or "")
        for key in (
            *DEFAULT_FORM,
            "public_description",
            "private_comment",
            "adult_content",
            "review_manually",
        )
    }
    errors: dict[str, str] = {}
    settings: dict = {
        "name": raw["name"],
        "public_description": raw["public_description"],
        "private_comment": raw["private_comment"],
        "adult_content": bool(raw["adult_content"]),
        "auto_accept": not raw["review_manually"],
        "filter_languages": [c for c in raw["languages"].replace(";", ",").split(",") if c.strip()],
        "captcha_frequency": raw["captcha_frequency"] or None,
    }

    def take(key: str, parse) -> None:
        try:
            settings[key] = parse()
        except ValidationFailed as exc:
            errors.update(exc.errors)

    minimum = get_settings().min_reward_cents
    take(
        "reward_cents",
        lambda: parse_money_cents(raw["price"], field="price", minimum_cents=minimum),
    )
    for key, low, high in (
        ("overlap", 1, pools.MAX_OVERLAP),
        ("general_per_suite", 0, pools.MAX_PER_SUITE),
        ("control_per_suite", 0, pools.MAX_PER_SUITE),
        ("time_limit_seconds", 10, pools.MAX_TIME_LIMIT),
        ("review_period_days", 1, 21),
    ):
        take(
            key,
            lambda key=key, low=low, high=high: parse_int(
                raw[key], field=key, minimum=low, maximum=high
            ),
        )
    if raw["min_rating"].strip():
        take(
            "min_rating",
            lambda: parse_int(raw["min_rating"], field="min_rating", minimum=0, maximum=100),
        )
    else:
        settings["min_rating"] = None
    _parse_dynamic(raw, settings, errors)
    if "reward_cents" in errors:
        errors["price"] = errors.pop("reward_cents")
    return raw, settings, errors


def _parse_dynamic(raw: dict, settings: dict, errors: dict[str, str]) -> None:
    """Dynamic overlap: an empty maximum overlap turns it off; the pool's model."""
    if raw["max_overlap"].strip():
        try:
            settings["max_overlap"] = parse_int(
                raw["max_overlap"], field="max_overlap", minimum=1, maximum=pools.MAX_OVERLAP
            )
        except ValidationFailed as exc:
            errors.update(exc.errors)
        text = raw["min_confidence"].strip().rstrip("%")
        try:
            value = float(text)
            settings["min_confidence"] = value / 100 if value > 1 else value
        except ValueError:
            errors["min_confidence"] = "A confidence such as 0.8 (or 80 %)."
    else:
        settings["max_overlap"] = None
        settings["min_confidence"] = None
    for key in ("answer_weight_skill_id", "model_id", "model_retrain_collection_id"):
        value = raw[key].strip()
        if value and not value.isdigit():
            errors[key] = "Choose one from the list."
        settings[key] = int(value) if value.isdigit() else None
    settings["model_retrain_every"] = None
    if raw["model_retrain_every"].strip():
        try:
            settings["model_retrain_every"] = parse_int(
                raw["model_retrain_every"], field="model_retrain_every", minimum=1,
                maximum=MAX_RETRAIN_EVERY,
            )  # fmt: skip
        except ValidationFailed as exc:
            errors.update(exc.errors)


def _service_errors(exc: ValidationFailed) -> dict[str, str]:
    errors = dict(exc.errors)
    if "reward_cents" in errors:
        errors["price"] = errors.pop("reward_cents")
    if "filter_languages" in errors:
        errors["languages"] = errors.pop("filter_languages")
    return errors


def _form(request, session, user, *, project, pool=None, values, errors=None, message=None):
    return render(
        request,
        "requester/pools/form.html",
        {
            "project": project,
            "pool": pool,
            "values": values,
            "errors": errors or {},
            "message": message,
            "skills": skills.list_skills(session, requester=user),
            "models": trained_models.list_published_models(session, requester=user),
            "collections": [
                c
                for c in ml_collections.list_collections(session, requester=user)
                if c.status == "ready"
            ],
        },
        status_code=422 if (errors or message) else 200,
    )


@router.get("/requester/projects/{project_id}/pools/new", name="pools:new")
def new_pool(request: Request, session: SessionDep, user: CurrentRequester, project_id: int):
    """The pool form with Toloka's image-classification defaults."""
    project = projects.get_project(session, requester=user, project_id=project_id)
    count = len(pools.list_pools(session, requester=user, project_id=project.id))
    return _form(
        request,
        session,
        user,
        project=project,
        values={**DEFAULT_FORM, "name": f"Pool {count + 1}"},
    )


@router.post("/requester/projects/{project_id}/pools", name="pools:create")
async def create_pool(
    request: Request, session: SessionDep, user: CurrentRequester, project_id: int
):
    """Create a draft pool, or show the form again with inline errors."""
    project = projects.get_project(session, requester=user, project_id=project_id)
    raw, settings, errors = _parse(await request.form())
    if errors:
        return _form(
            request,
            session,
            user,
            project=project,
            values=raw,
            errors=errors,
            message="Please fix the highlighted fields.",
        )
    try:
        pool = pools.create_pool(
            session,
            requester=user,
            project_id=project.id,
            use_quality_preset=bool(raw["quality_preset"]),
            **settings,
        )
    except (ValidationFailed, Conflict) as exc:
        errors = _service_errors(exc) if isinstance(exc, ValidationFailed) else {}
        return _form(
            request, session, user, project=project, values=raw, errors=errors, message=exc.message
        )
    flash(request, f"Pool “{pool.name}” created. Upload images next.", "success")
    return RedirectResponse(request.url_for("pools:detail", pool_id=pool.id), status_code=303)


def _detail_context(session, user, pool: Pool) -> dict:
    project = projects.get_project(session, requester=user, project_id=pool.project_id)
    return {
        "pool": pool,
        "project": project,
        "counts": pools.task_counts(session, pool=pool, recent=True),
        "progress": progress.get_pool_progress(session, requester=user, pool_id=pool.id),
        "distribution": control_tasks.control_distribution(
            session, requester=user, pool_id=pool.id
        ),
        "review": pools.review_budget(session, requester=user, pool_id=pool.id),
        "savings": overlap_savings.get_overlap_savings(session, requester=user, pool_id=pool.id),
        "reservation": reservation.reservation_state(session, pool=pool),
        "mloop": pool_retraining.model_loop_state(session, pool=pool),
    }


@router.get("/requester/pools/{pool_id}", name="pools:detail")
def pool_detail(request: Request, session: SessionDep, user: CurrentRequester, pool_id: int):
    """Settings, task counts by kind, uploads, budget and live progress."""
    pool = pools.get_pool(session, requester=user, pool_id=pool_id)
    return render(request, "requester/pools/detail.html", _detail_context(session, user, pool))


@router.get("/requester/pools/{pool_id}/progress", name="pools:progress")
def pool_progress(request: Request, session: SessionDep, user: CurrentRequester, pool_id: int):
    """The live progress partial (polled every 3 s while the pool is open)."""
    pool = pools.get_pool(session, requester=user, pool_id=pool_id)
    ctx = {
        "pool": pool,
        "counts": pools.task_counts(session, pool=pool, recent=True),
        "progress": progress.get_pool_progress(session, requester=user, pool_id=pool.id),
        "savings": overlap_savings.get_overlap_savings(session, requester=user, pool_id=pool.id),
        "reservation": reservation.reservation_state(session, pool=pool),
    }
    return render(request, "requester/pools/_progress.html", ctx)


@router.get("/requester/pools/{pool_id}/edit", name="pools:edit")
def edit_pool(request: Request, session: SessionDep, user: CurrentRequester, pool_id: int):
    """The pool form, filled in."""
    pool = pools.get_pool(session, requester=user, pool_id=pool_id)
    project = projects.get_project(session, requester=user, project_id=pool.project_id)
    return _form(request, session, user, project=project, pool=pool, values=_values_of(pool))


@router.post("/requester/pools/{pool_id}/edit", name="pools:update")
async def update_pool(request: Request, session: SessionDep, user: CurrentRequester, pool_id: int):
    """Save settings; an open pool keeps its price, overlap and suite composition."""
    pool = pools.get_pool(session, requester=user, pool_id=pool_id)
    project = projects.get_project(session, requester=user, project_id=pool.project_id)
    raw, settings, errors = _parse(await request.form())
    if errors:
        return _form(
            request,
            session,
            user,
            project=project,
            pool=pool,
            values=raw,
            errors=errors,
            message="Please fix the highlighted fields.",
        )
    try:
        pools.update_pool(
            session,
            requester=user,
            pool_id=pool.id,
            use_quality_preset=bool(raw["quality_preset"]),
            **settings,
        )
    except (ValidationFailed, Conflict) as exc:
        session.rollback()
        errors = _service_errors(exc) if isinstance(exc, ValidationFailed) else {}
        return _form(
            request,
            session,
            user,
            project=project,
            pool=pool,
            values=raw,
            errors=errors,
            message=exc.message,
        )
    flash(request, "Pool saved.", "success")
    return RedirectResponse(request.url_for("pools:detail", pool_id=pool.id), status_code=303)


def _launch_page(request, session, user, pool, *, margin=None, message=None, status_code=200):
    """The budget review; a margin that is not a whole percent in range is shown as an
    error on its field, with the figures of the suggested margin."""
    errors: dict[str, str] = {}
    try:
        budget = pools.review_budget(
            session, requester=user, pool_id=pool.id, margin_percent=margin
        )
    except ValidationFailed as exc:
        errors = dict(exc.errors)
        message = message or exc.message
        status_code = 422
        budget = pools.review_budget(session, requester=user, pool_id=pool.id)
    ctx = {
        "pool": pool,
        "review": budget,
        "message": message,
        "errors": errors,
        "margin_value": margin,
    }
    return render(request, "requester/pools/launch.html", ctx, status_code=status_code)


def _margin_of(raw: str | None) -> str | None:
    return None if raw is None or not raw.strip() else raw.strip()


@router.get("/requester/pools/{pool_id}/launch", name="pools:review")
def review(request: Request, session: SessionDep, user: CurrentRequester, pool_id: int):
    """The budget review before launch (``?margin_percent=N`` recalculates the range)."""
    pool = pools.get_pool(session, requester=user, pool_id=pool_id)
    margin = _margin_of(request.query_params.get("margin_percent"))
    return _launch_page(request, session, user, pool, margin=margin)


@router.post("/requester/pools/{pool_id}/launch", name="pools:launch")
async def launch(request: Request, session: SessionDep, user: CurrentRequester, pool_id: int):
    """Reserve the budget (estimate + margin) and open the pool; a short balance or a bad
    margin is shown on the review page."""
    pool = pools.get_pool(session, requester=user, pool_id=pool_id)
    margin = _margin_of((await request.form()).get("margin_percent"))
    try:
        pools.launch_pool(session, requester=user, pool_id=pool.id, margin_percent=margin)
    except (InsufficientFunds, Conflict, ValidationFailed) as exc:
        session.rollback()
        return _launch_page(
            request,
            session,
            user,
            pool,
            margin=margin,
            message=exc.message,
            status_code=exc.status_code,
        )
    flash(request, f"Pool “{pool.name}” is open: labelers can start.", "success")
    return RedirectResponse(request.url_for("pools:detail", pool_id=pool.id), status_code=303)


@router.post("/requester/pools/{pool_id}/preselect", name="pools:preselect")
async def preselect(request: Request, session: SessionDep, user: CurrentRequester, pool_id: int):
    """Turn "pre-select the model's answer" on or off for the pool's project."""
    pool = pools.get_pool(session, requester=user, pool_id=pool_id)
    on = bool((await request.form()).get("on"))
    pool_model.set_preselect_model_answer(
        session, requester=user, project_id=pool.project_id, on=on
    )
    flash(
        request,
        "Labelers now see the model's answer pre-selected; the raw results say so."
        if on
        else "Labelers no longer see the model's answer.",
        "success",
    )
    return RedirectResponse(request.url_for("pools:detail", pool_id=pool_id), status_code=303)


@router.post("/requester/pools/{pool_id}/reservation", name="pools:add_reservation")
async def add_reservation(
    request: Request, session: SessionDep, user: CurrentRequester, pool_id: int
):
    """Add money from the balance to an open pool's reservation (consent to spend it)."""
    pool = pools.get_pool(session, requester=user, pool_id=pool_id)
    form = await request.form()
    try:
        amount = parse_money_cents(form.get("amount"), field="amount", minimum_cents=1)
        reservation.add_to_reservation(
            session, requester=user, pool_id=pool.id, amount_cents=amount
        )
    except (InsufficientFunds, Conflict, ValidationFailed) as exc:
        session.rollback()
        flash(request, exc.message, "error")
        return RedirectResponse(request.url_for("pools:detail", pool_id=pool.id), status_code=303)
    flash(
        request,
        f"Added {amount / 100:,.2f} USD to the reservation: labelers can take suites again.",
        "success",
    )
    return RedirectResponse(request.url_for("pools:detail", pool_id=pool.id), status_code=303)


@router.post("/requester/pools/{pool_id}/close", name="pools:close")
def close(request: Request, session: SessionDep, user: CurrentRequester, pool_id: int):
    """Close the pool by hand; what was not spent goes back to the balance."""
    released = pools.close_pool(session, requester=user, pool_id=pool_id)
    flash(request, f"Pool closed. {released / 100:,.2f} USD went back to your balance.", "success")
    return RedirectResponse(request.url_for("pools:detail", pool_id=pool_id), status_code=303)


@router.post("/requester/pools/{pool_id}/archive", name="pools:archive")
def archive(request: Request, session: SessionDep, user: CurrentRequester, pool_id: int):
    """Archive a draft or closed pool."""
    pool = pools.archive_pool(session, requester=user, pool_id=pool_id)
    flash(request, f"Pool “{pool.name}” archived.", "success")
    return RedirectResponse(
        request.url_for("projects:detail", project_id=pool.project_id), status_code=303
    )


@router.get("/requester/pools/{pool_id}/results.tsv", name="pools:results")
def results(session: SessionDep, user: CurrentRequester, pool_id: int) -> Response:
    """Every submitted answer as TSV (Toloka's raw-results columns)."""
    text = progress.export_raw_answers(session, requester=user, pool_id=pool_id)
    return Response(
        text,
        media_type="text/tab-separated-values; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="pool-{pool_id}-answers.tsv"'},
    )
