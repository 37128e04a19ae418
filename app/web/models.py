"""Model pages: train, live progress, evaluation, iterations, publish, batch predict, export."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import FileResponse, RedirectResponse

from app.deps import CurrentRequester, SessionDep, verify_csrf
from app.errors import ValidationFailed
from app.services.ml import collections, exports, inference, train_defaults, trained_models
from app.services.ml import lists as ml_lists
from app.web.lists import ListView, list_params
from app.web.templating import flash, render

router = APIRouter(dependencies=[Depends(verify_csrf)], include_in_schema=False)

AUGMENTATIONS = [
    ("none", "None"),
    ("light", "Light (crop, flip)"),
    ("medium", "Medium (+ colour jitter)"),
    ("heavy", "Heavy (+ TrivialAugment, erasing)"),
]


def parse_settings(form: dict) -> dict:
    """Training settings from the form, every bad field reported at once."""
    errors: dict[str, str] = {}
    values: dict = {"arch": (form.get("arch") or "").strip()}
    for field, (low, high) in trained_models.TRAIN_LIMITS.items():
        text = (form.get(field) or "").strip()
        try:
            number = int(text)
        except ValueError:
            errors[field] = "Enter a whole number."
            continue
        if not low <= number <= high:
            errors[field] = f"Between {low} and {high}."
        values[field] = number
    try:
        values["lr"] = float((form.get("lr") or "").strip().replace(",", "."))
        if not 0 < values["lr"] <= 10:
            errors["lr"] = "A positive number like 0.001."
    except ValueError:
        errors["lr"] = "Enter a number like 0.001."
    values["augmentation"] = form.get("augmentation") or "light"
    values["pretrained"] = bool(form.get("pretrained"))
    values["device"] = form.get("device") or "auto"
    if errors:
        raise ValidationFailed("Please fix the highlighted fields.", errors=errors)
    return values


def _ready_collections(session, user) -> tuple[list, dict[int, int]]:
    """The collections one can train on, and their training images."""
    ready = [
        c for c in collections.list_collections(session, requester=user) if c.status == "ready"
    ]
    counts = collections.class_counts(session, collection_ids=[c.id for c in ready])
    images = {c.id: sum(n["train"] for n in counts.get(c.id, {}).values()) for c in ready}
    return ready, images


def _train_page(request, session, user, *, values, errors=None, error=None, status=200, ready=None):
    ready, images = ready or _ready_collections(session, user)
    cuda = train_defaults.cuda_available()
    rates = train_defaults.throughput(session, requester=user)
    estimate = None
    chosen = values.get("collection_id")
    try:
        if chosen in images:
            device = train_defaults.resolved_device(values.get("device"), cuda=cuda)
            seconds = train_defaults.estimate_seconds(
                arch=str(values.get("arch")),
                image_size=int(values.get("image_size")),
                epochs=int(values.get("epochs")),
                images=images[chosen],
                device=device,
                rates=rates,
            )
            estimate = {"text": train_defaults.describe_duration(seconds), "device": device}
    except (TypeError, ValueError):  # a bad field: its error is shown, not an estimate
        estimate = None
    return render(
        request,
        "requester/models/train.html",
        {
            "collections": ready,
            "architectures": train_defaults.form_architectures(),
            "augmentations": AUGMENTATIONS,
            "limits": trained_models.TRAIN_LIMITS,
            "values": values,
            "errors": errors or {},
            "error": error,
            "cuda": cuda,
            "estimate": estimate,
            "estimator": {
                "gmacs": train_defaults.GMACS_224,
                "default_gmacs": train_defaults.DEFAULT_GMACS,
                "step_factor": train_defaults.TRAIN_STEP_FACTOR,
                "rates": rates.gmacs_per_s,
                "measured": rates.measured,
                "cuda": cuda,
                "images": {str(cid): n for cid, n in images.items()},
                "suggestions": {
                    str(cid): train_defaults.suggest_settings(images=n, cuda=cuda)
                    for cid, n in images.items()
                },
            },
        },
        status_code=status,
    )


@router.get("/requester/models", name="models:list")
def models_list(request: Request, session: SessionDep, user: CurrentRequester):
    """Every model, one row per iteration, with its collection (searchable, sorted, paged)."""
    params = list_params(request, ml_lists.MODEL_LIST)
    page = ml_lists.page_models(session, requester=user, params=params)
    return render(
        request, "requester/models/list.html", {"models": ListView(request, page, target="models")}
    )


@router.get("/requester/models/train", name="models:train")
def train_form(
    request: Request, session: SessionDep, user: CurrentRequester, collection_id: int | None = None
):
    """The Train a model page, with defaults chosen for this machine (GPU or CPU only) and
    the collection's size, and an estimated duration."""
    ready, images = _ready_collections(session, user)
    if collection_id not in images and len(ready) == 1:
        collection_id = ready[0].id
    suggested = trained_models.DEFAULT_SETTINGS
    if collection_id in images:
        suggested = train_defaults.suggest_settings(
            images=images[collection_id], cuda=train_defaults.cuda_available()
        )
    values = {**suggested, "collection_id": collection_id, "mode": "classification"}
    return _train_page(request, session, user, values=values, ready=(ready, images))


@router.post("/requester/models/train", name="models:start")
async def train_start(request: Request, session: SessionDep, user: CurrentRequester):
    """Start a training job and go to the model's page, which shows its progress."""
    form = dict(await request.form())
    values = {**form, "pretrained": bool(form.get("pretrained"))}
    collection_id = form.get("collection_id") or ""
    values["collection_id"] = int(collection_id) if collection_id.isdigit() else None
    try:
        settings = parse_settings(form)
        if values["collection_id"] is None:
            raise ValidationFailed(
                "Select a collection.", errors={"collection_id": "Select a collection."}
            )
        model = trained_models.start_training(
            session, requester=user, collection_id=values["collection_id"], settings=settings
        )
    except ValidationFailed as exc:
        return _train_page(
            request, session, user, values=values, errors=exc.errors, error=exc.message, status=422
        )
    flash(request, f"Training iteration {model.iteration} started.", "success")
    url = request.url_for("models:detail", model_id=model.id)
    return RedirectResponse(str(url), status_code=303)


def _exports(session, user, model) -> dict:
    """``{format: {"status", "job"}}`` of the model's latest exports."""
    if model.status != "completed":
        return {}
    jobs = exports.list_exports(session, requester=user, model_id=model.id)
    return {
        job.payload["format"]: {"status": exports.export_status(model, job), "job": job}
        for job in jobs
    }


def _detail(request, session, user, model_id: int, *, key=None, errors=None, status=200):
    model = trained_models.get_model(session, requester=user, model_id=model_id)
    sources = inference.batch_sources(session, requester=user)
    return render(
        request,
        "requester/models/detail.html",
        {
            "model": model,
            "collection": trained_models.collection_of(session, model),
            "job": trained_models.model_job(session, model),
            "evaluation": trained_models.evaluation(model),
            "iterations": trained_models.list_models(
                session, requester=user, collection_id=model.collection_id
            ),
            "prediction_key": key,
            "errors": errors or {},
            "pools": sources["pools"],
            "collections": sources["collections"],
            "batch_jobs": inference.list_batch_jobs(session, requester=user, model_id=model.id),
            "exports": _exports(session, user, model),
        },
        status_code=status,
    )


@router.get("/requester/models/{model_id}", name="models:detail")
def model_detail(request: Request, session: SessionDep, user: CurrentRequester, model_id: int):
    """Progress while training; accuracy, per-class figures, pictures and threshold after."""
    return _detail(request, session, user, model_id)


@router.get("/requester/models/{model_id}/figures/{figure}.png", name="models:figure")
def model_figure(session: SessionDep, user: CurrentRequester, model_id: int, figure: str):
    """The confusion matrix or training curves picture of the requester's model."""
    path = trained_models.figure_path(session, requester=user, model_id=model_id, figure=figure)
    return FileResponse(path, media_type="image/png", headers={"Cache-Control": "private"})


@router.post("/requester/models/{model_id}/cancel", name="models:cancel")
def model_cancel(request: Request, session: SessionDep, user: CurrentRequester, model_id: int):
    """Stop a training run."""
    trained_models.cancel_training(session, requester=user, model_id=model_id)
    flash(request, "Cancelling: the run stops at its next step.", "info")
    url = request.url_for("models:detail", model_id=model_id)
    return RedirectResponse(str(url), status_code=303)


@router.post("/requester/models/{model_id}/publish", name="models:publish")
def model_publish(
    request: Request,
    session: SessionDep,
    user: CurrentRequester,
    model_id: int,
    name: str = Form(""),
):
    """Publish under a name; the page shows the new prediction key once."""
    try:
        _, key = trained_models.publish_model(session, requester=user, model_id=model_id, name=name)
    except ValidationFailed as exc:
        return _detail(request, session, user, model_id, errors=exc.errors, status=422)
    return _detail(request, session, user, model_id, key=key)


@router.post("/requester/models/{model_id}/unpublish", name="models:unpublish")
def model_unpublish(request: Request, session: SessionDep, user: CurrentRequester, model_id: int):
    """Withdraw a published model; its prediction key stops working."""
    trained_models.unpublish_model(session, requester=user, model_id=model_id)
    flash(request, "The model is no longer published.", "info")
    url = request.url_for("models:detail", model_id=model_id)
    return RedirectResponse(str(url), status_code=303)


@router.post("/requester/models/{model_id}/batch", name="models:batch")
def model_batch(
    request: Request,
    session: SessionDep,
    user: CurrentRequester,
    model_id: int,
    source: str = Form(""),
):
    """Predict every image of a pool or collection into a TSV (a job)."""
    kind, _, raw_id = source.partition(":")
    if kind not in ("pool", "collection") or not raw_id.isdigit():
        return _detail(
            request,
            session,
            user,
            model_id,
            errors={"source": "Pick a pool or a collection."},
            status=422,
        )
    job = inference.start_batch_prediction(
        session, requester=user, model_id=model_id, **{f"{kind}_id": int(raw_id)}
    )
    flash(request, f"Batch prediction job #{job.id} started.", "success")
    url = request.url_for("models:detail", model_id=model_id)
    return RedirectResponse(f"{url}#batch", status_code=303)


@router.get("/requester/predictions/{job_id}.tsv", name="models:batch_tsv")
def batch_tsv(session: SessionDep, user: CurrentRequester, job_id: int):
    """The TSV of a finished batch prediction job."""
    path = inference.get_batch_tsv(session, requester=user, job_id=job_id)
    return FileResponse(
        path, media_type="text/tab-separated-values", filename=f"predictions-{job_id}.tsv"
    )


@router.post("/requester/models/{model_id}/export", name="models:export")
def model_export(
    request: Request,
    session: SessionDep,
    user: CurrentRequester,
    model_id: int,
    format: str = Form("onnx"),  # noqa: A002 - the form field's name
):
    """Export the model to ONNX or TorchScript (a job; the page links the file when done)."""
    job = exports.export_model(session, requester=user, model_id=model_id, fmt=format)
    flash(request, f"Export to {job.payload['format']} started (job #{job.id}).", "success")
    url = request.url_for("models:detail", model_id=model_id)
    return RedirectResponse(f"{url}#export", status_code=303)


@router.get("/requester/models/{model_id}/export/{fmt}", name="models:export_file")
def model_export_file(session: SessionDep, user: CurrentRequester, model_id: int, fmt: str):
    """Download an exported file."""
    path = exports.export_file(session, requester=user, model_id=model_id, fmt=fmt)
    model = trained_models.get_model(session, requester=user, model_id=model_id)
    return FileResponse(
        path,
        media_type="application/octet-stream",
        filename=exports.download_name(model, exports.check_format(fmt)),
    )
