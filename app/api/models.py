"""Trained models over JSON: list, get, train, publish, cancel and predict."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from starlette.datastructures import UploadFile

from app.api.schemas.models import (
    METRIC_KEYS,
    ExportPublic,
    ExportRequest,
    ModelPublic,
    PredictionResult,
    PublishRequest,
    PublishResult,
    TrainRequest,
)
from app.db.models import Role, TrainedModel
from app.deps import ApiRequester, SessionDep
from app.errors import Forbidden, Unauthorized, ValidationFailed
from app.services.accounts.users import user_for_token
from app.services.ml import exports, inference, trained_models
from app.settings import get_settings

router = APIRouter(prefix="/api/v1", tags=["models"])


def model_public(session, model: TrainedModel) -> ModelPublic:
    """The JSON view of a model, with its job's progress while training."""
    job = trained_models.model_job(session, model)
    metrics = {k: model.metrics[k] for k in METRIC_KEYS if k in (model.metrics or {})}
    return ModelPublic(
        **model.model_dump(
            exclude={"metrics", "owner_id", "checkpoint_dir", "prediction_key_hash"}
        ),
        metrics=metrics,
        progress=job.progress if job else None,
        progress_message=job.message if job else None,
    )


@router.get("/models", response_model=list[ModelPublic], name="api:models_list")
def list_models(session: SessionDep, user: ApiRequester, collection_id: int | None = None):
    """The requester's models, newest first (of one collection when given)."""
    models = trained_models.list_models(session, requester=user, collection_id=collection_id)
    return [model_public(session, m) for m in models]


@router.post("/models", response_model=ModelPublic, status_code=202, name="api:models_train")
def start_training(body: TrainRequest, session: SessionDep, user: ApiRequester):
    """Start training the next iteration of a collection's model; poll GET for progress."""
    settings = body.model_dump(exclude={"collection_id"})
    model = trained_models.start_training(
        session, requester=user, collection_id=body.collection_id, settings=settings
    )
    return model_public(session, model)


@router.get("/models/{model_id}", response_model=ModelPublic, name="api:models_get")
def get_model(model_id: int, session: SessionDep, user: ApiRequester):
    """One model with its status, progress and validation metrics."""
    return model_public(
        session, trained_models.get_model(session, requester=user, model_id=model_id)
    )


@router.post("/models/{model_id}/publish", response_model=PublishResult, name="api:models_publish")
def publish(model_id: int, body: PublishRequest, session: SessionDep, user: ApiRequester):
    """Publish under a name; the prediction key is in this answer only."""
    model, key = trained_models.publish_model(
        session, requester=user, model_id=model_id, name=body.name
    )
    return PublishResult(model=model_public(session, model), prediction_key=key)


@router.post("/models/{model_id}/cancel", response_model=ModelPublic, name="api:models_cancel")
def cancel(model_id: int, session: SessionDep, user: ApiRequester):
    """Stop a queued or running training."""
    model = trained_models.cancel_training(session, requester=user, model_id=model_id)
    return model_public(session, model)


def _authorized_model(request: Request, session, model_id: int) -> TrainedModel:
    """The model, for its prediction key or for its owner's API token."""
    key = (request.headers.get("prediction-key") or "").strip()
    if key:
        model = trained_models.model_for_prediction_key(session, model_id=model_id, key=key)
        if model is not None:
            return model
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip() if scheme.lower() in ("oauth", "bearer") else ""
    if not token and not key:
        raise Unauthorized(
            "Send the model's prediction key ('Prediction-Key: <key>') or an API token."
        )
    try:
        user = user_for_token(session, token or key)
    except Unauthorized:
        raise Unauthorized("Invalid prediction key or API token for this model.") from None
    if user.role not in (Role.REQUESTER, Role.ADMIN):
        raise Forbidden("This endpoint is not available to your account type.")
    return trained_models.get_model(session, requester=user, model_id=model_id)


async def _image_from_request(request: Request) -> tuple[str, bytes]:
    content_type = request.headers.get("content-type", "")
    limit = get_settings().max_image_bytes
    url = None
    if content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        form = await request.form()
        upload = form.get("file")
        if isinstance(upload, UploadFile):
            return upload.filename or "file", await upload.read(limit + 1)
        url = form.get("url")
    elif content_type.startswith("application/json"):
        try:
            body = await request.json()
        except ValueError:
            body = None
        url = body.get("url") if isinstance(body, dict) else None
    elif content_type.startswith(("application/octet-stream", "image/")):
        data = await request.body()
        return "body", data
    if not isinstance(url, str) or not url.strip():
        raise ValidationFailed(
            "Send an image as multipart field 'file', or an image URL as 'url'.",
            errors={"file": "Required (or url)."},
        )
    return url, await run_in_threadpool(inference.fetch_image_url, url)


@router.post(
    "/models/{model_id}/predict", response_model=PredictionResult, name="api:models_predict"
)
async def predict(model_id: int, request: Request, session: SessionDep, top_k: int | None = None):
    """Classify one image (file upload or URL): labels with probabilities, most likely first.

    Authenticated by the model's prediction key (header ``Prediction-Key``) or the owner's
    API token (``Authorization: OAuth <token>``).
    """
    model = await run_in_threadpool(_authorized_model, request, session, model_id)
    name, data = await _image_from_request(request)
    predictions = await run_in_threadpool(
        inference.predict_bytes, model, data=data, name=name, top_k=top_k
    )
    multilabel = inference.is_multilabel(model)
    threshold = inference.threshold_of(model) if multilabel else None
    return PredictionResult(
        model_id=model.id,
        predictions=[{"label": label, "probability": p} for label, p in predictions],
        multilabel=multilabel,
        threshold=threshold,
        tags=[label for label, p in predictions if p >= threshold] if multilabel else None,
    )


def _export_public(request: Request, model: TrainedModel, job) -> ExportPublic:
    fmt = job.payload["format"]
    status = exports.export_status(model, job)
    url = None
    if status == "done":
        url = str(request.url_for("api:models_export_file", model_id=model.id, fmt=fmt))
    return ExportPublic(
        model_id=model.id,
        format=fmt,
        status=status,
        job_id=job.id,
        message=job.message if status == "failed" else "",
        download_url=url,
    )


@router.post(
    "/models/{model_id}/exports",
    response_model=ExportPublic,
    status_code=202,
    name="api:models_export",
)
def export_model(
    model_id: int, body: ExportRequest, request: Request, session: SessionDep, user: ApiRequester
):
    """Export a trained model to ONNX or TorchScript (a job; the same export is reused)."""
    job = exports.export_model(session, requester=user, model_id=model_id, fmt=body.format)
    model = trained_models.get_model(session, requester=user, model_id=model_id)
    return _export_public(request, model, job)


@router.get(
    "/models/{model_id}/exports", response_model=list[ExportPublic], name="api:models_exports"
)
def list_exports(model_id: int, request: Request, session: SessionDep, user: ApiRequester):
    """The model's exports (the latest of each format) with their download URLs."""
    model = trained_models.get_model(session, requester=user, model_id=model_id)
    jobs = exports.list_exports(session, requester=user, model_id=model_id)
    return [_export_public(request, model, job) for job in jobs]


@router.get("/models/{model_id}/exports/{fmt}/file", name="api:models_export_file")
def download_export(model_id: int, fmt: str, session: SessionDep, user: ApiRequester):
    """Download an exported model file (classes and preprocessing in its metadata)."""
    path = exports.export_file(session, requester=user, model_id=model_id, fmt=fmt)
    model = trained_models.get_model(session, requester=user, model_id=model_id)
    return FileResponse(
        path,
        media_type="application/octet-stream",
        filename=exports.download_name(model, exports.check_format(fmt)),
    )
