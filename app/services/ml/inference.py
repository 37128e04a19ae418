"""Prediction with trained models: one image at a time, or a whole pool/collection as a job.

Checkpoints are loaded once per process (``model.predict.get_predictor``) and shared by
threads; a prediction keeps its tensors local, so concurrent requests are safe.
"""

from __future__ import annotations

from pathlib import Path

from sqlmodel import Session, select

from aggregation.tsv import spreadsheet_safe
from app.db.models import Job, MediaFile, ModelStatus, Pool, Task, TrainedModel, User
from app.errors import Conflict, NotFound, UploadRejected, ValidationFailed
from app.services.media import store as media
from app.services.media.urls import fetch_image_url, parse_image_url  # noqa: F401 (the routes')
from app.services.ml.collections import collection_items, get_collection
from app.services.ml.trained_models import get_model
from app.services.projects.upload_formats import requester_image
from app.settings import get_settings

BATCH_JOB_KIND = "batch_inference"
TSV_HEADER = "INPUT:image\tOUTPUT:result\tCONFIDENCE:result\n"


def predictor_for(model: TrainedModel):
    """The loaded predictor of a completed model (cached per process); `NotFound` otherwise."""
    from model.checkpoint import CheckpointError
    from model.predict import get_predictor

    if model.status != ModelStatus.COMPLETED or not model.checkpoint_dir:
        raise Conflict("This model has not finished training.")
    device = (model.config or {}).get("device", "auto")
    try:
        return get_predictor(model.checkpoint_dir, device=device)
    except CheckpointError as exc:
        raise Conflict(f"The model's checkpoint cannot be loaded: {exc}") from None


def predict_bytes(model: TrainedModel, *, data: bytes, name: str, top_k: int | None = 5) -> list:
    """``[(label, probability), ...]`` for one image, most probable first.

    A multilabel model returns every tag with its own probability (they do not sum to 1);
    ``is_multilabel`` / ``threshold_of`` say which tags count as present.

    The bytes are checked like any upload first (size, format, decompression bombs), so a
    bad file gets an ``UploadRejected`` naming it.
    """
    from model.data import BadImageError

    media.inspect_image(data, name=name)
    predictor = predictor_for(model)
    if predictor.multilabel:
        top_k = None
    try:
        return predictor.predict(data, top_k=top_k)
    except BadImageError as exc:
        raise UploadRejected(f"{name}: {exc}", file=name) from None


def is_multilabel(model: TrainedModel) -> bool:
    """Whether the model gives each tag its own probability (several tags per image)."""
    return bool((model.config or {}).get("multilabel"))


def threshold_of(model: TrainedModel) -> float:
    """The probability from which a multilabel model's tag counts as present."""
    return float((model.config or {}).get("threshold", 0.5))


def predict_images(
    session: Session,
    *,
    requester: User,
    model_id: int,
    files: list[tuple[str, bytes]],
    top_k: int = 5,
) -> list[dict]:
    """Predict several uploaded images with one of the requester's models.

    Returns one dict per file: ``name``, ``predictions`` (label, probability) or ``error``.
    """
    model = get_model(session, requester=requester, model_id=model_id)
    predictor_for(model)
    if not files:
        raise ValidationFailed("Choose one or more images.", errors={"files": "Required."})
    results = []
    for name, data in files:
        try:
            content_type = media.inspect_image(data, name=name)[0]
            predictions = predict_bytes(model, data=data, name=name, top_k=top_k)
            results.append(
                {
                    "name": name,
                    "predictions": predictions,
                    "data": data,
                    "content_type": content_type,
                    # multilabel: the tags count from this probability on (None: one class)
                    "threshold": threshold_of(model) if is_multilabel(model) else None,
                }
            )
        except UploadRejected as exc:
            results.append({"name": name, "error": exc.message, "predictions": []})
    return results


# ----------------------------------------------------------------------------- batch


def start_batch_prediction(
    session: Session,
    *,
    requester: User,
    model_id: int,
    pool_id: int | None = None,
    collection_id: int | None = None,
) -> Job:
    """Queue a job that predicts every stored image of a pool or a collection into a TSV."""
    model = get_model(session, requester=requester, model_id=model_id)
    predictor_for(model)
    if (pool_id is None) == (collection_id is None):
        raise ValidationFailed(
            "Pick either a pool or a collection.", errors={"source": "Pick one."}
        )
    if pool_id is not None:
        pool = session.get(Pool, pool_id)
        if pool is None or pool.owner_id != requester.id:
            raise NotFound("No such pool.")
        source = {"pool_id": pool.id}
    else:
        collection = get_collection(session, requester=requester, collection_id=collection_id)
        source = {"collection_id": collection.id}
    from app.services.jobs.records import submit_job

    return submit_job(
        session, kind=BATCH_JOB_KIND, owner=requester, payload={"model_id": model.id, **source}
    )


def batch_inputs(session: Session, payload: dict) -> list[tuple[str, MediaFile | None]]:
    """``(INPUT:image value, media file or None)`` for every image of the job's source."""
    if payload.get("pool_id") is not None:
        rows = session.exec(
            select(Task, MediaFile)
            .join(MediaFile, MediaFile.id == Task.media_id, isouter=True)
            .where(Task.pool_id == payload["pool_id"], Task.kind == "general")
            .order_by(Task.position, Task.id)
        ).all()
        base = get_settings().base_url
        return [
            (
                requester_image(
                    task.input_values,
                    task.image,
                    media_file.original_name if media_file else None,
                    base=base,
                ),
                media_file,
            )
            for task, media_file in rows
        ]
    from app.db.models import Collection

    collection = session.get(Collection, payload["collection_id"])
    if collection is None:
        raise NotFound("The collection was deleted.")
    return [
        (media_file.original_name or media.media_url(media_file), media_file)
        for _, media_file in collection_items(session, collection=collection)
    ]


def batch_output_path(job_id: int) -> Path:
    """Where a batch prediction job writes its TSV."""
    return get_settings().data_dir / "predictions" / f"predictions-{job_id}.tsv"


def get_batch_tsv(session: Session, *, requester: User, job_id: int) -> Path:
    """The TSV of one of the requester's finished batch prediction jobs."""
    job = session.get(Job, job_id)
    if job is None or job.owner_id != requester.id or job.kind != BATCH_JOB_KIND:
        raise NotFound("No such prediction job.")
    path = batch_output_path(job.id)
    if job.status != "succeeded" or not path.is_file():
        raise Conflict("The predictions are not ready yet.")
    return path


def list_batch_jobs(session: Session, *, requester: User, model_id: int) -> list[Job]:
    """The requester's batch prediction jobs of one model, newest first."""
    jobs = session.exec(
        select(Job)
        .where(Job.owner_id == requester.id, Job.kind == BATCH_JOB_KIND)
        .order_by(Job.id.desc())
        .limit(50)
    ).all()
    return [job for job in jobs if job.payload.get("model_id") == model_id]


def tsv_cell(value: str) -> str:
    """A TSV-safe cell (tabs and newlines replaced by spaces; no spreadsheet formula)."""
    return spreadsheet_safe(str(value).replace("\t", " ").replace("\r", " ").replace("\n", " "))


def batch_sources(session: Session, *, requester: User) -> dict:
    """The requester's pools and ready collections a batch prediction can run over."""
    from app.db.models import Collection

    pools = session.exec(
        select(Pool).where(Pool.owner_id == requester.id).order_by(Pool.id.desc())
    ).all()
    ready = session.exec(
        select(Collection)
        .where(Collection.owner_id == requester.id, Collection.status == "ready")
        .order_by(Collection.id.desc())
    ).all()
    return {"pools": list(pools), "collections": list(ready)}
