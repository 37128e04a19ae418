"""Trained models: each training run is an iteration of a collection's model.

Start training (a row plus a job), publish an iteration under a name with its own
prediction key, read its evaluation figures, cancel a run.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from sqlalchemy import func
from sqlmodel import Session, select

from app.db.models import (
    Collection,
    CollectionItem,
    Job,
    JobStatus,
    ModelStatus,
    TrainedModel,
    User,
)
from app.db.types import utcnow
from app.errors import Conflict, NotFound, ValidationFailed
from app.security import hash_token
from app.services.jobs.records import cancel_job_row, remove_work_dir
from app.services.ml.collections import get_collection
from app.services.text import check_text
from app.settings import get_settings
from model.config import MAX_BATCH_SIZE, MAX_EPOCHS, MAX_IMAGE_SIZE

TRAIN_JOB_KIND = "training"
PREDICTION_KEY_PREFIX = "pk_"
FIGURES = {"confusion_matrix": "confusion_matrix.png", "training_curves": "training_curves.png"}

# The bounds of the integer training settings (``TrainConfig``'s), for forms and messages.
TRAIN_LIMITS = {
    "epochs": (1, MAX_EPOCHS),
    "batch_size": (1, MAX_BATCH_SIZE),
    "image_size": (8, MAX_IMAGE_SIZE),
}

# Form defaults (the TrainConfig defaults, except a shorter default run).
DEFAULT_SETTINGS = {
    "arch": "resnet18",
    "epochs": 10,
    "batch_size": 32,
    "lr": 1e-3,
    "image_size": 224,
    "augmentation": "light",
    "pretrained": True,
    "device": "auto",
}


def architectures() -> list[dict]:
    """The curated architectures with their details (tiny test networks last)."""
    from model.factory import ARCHITECTURES

    infos = sorted(ARCHITECTURES.values(), key=lambda a: (a.test_only, a.params_m))
    return [info.to_dict() for info in infos]


def build_config(values: dict):
    """A validated ``TrainConfig`` from form/API values; bad fields → ``ValidationFailed``."""
    from model.config import TrainConfig
    from model.factory import UnknownArchitectureError, check_arch

    data = {k: v for k, v in values.items() if v is not None}
    arch = str(data.get("arch", "")).strip()
    try:
        check_arch(arch)
    except UnknownArchitectureError as exc:
        raise ValidationFailed(str(exc), errors={"arch": str(exc)}) from None
    data["arch"] = arch
    try:
        return TrainConfig.from_dict(data)
    except (ValueError, TypeError) as exc:
        text = str(exc)
        field = next((name for name in data if text.startswith(name)), None)
        if text.startswith("unknown TrainConfig"):
            field = "request"
        raise ValidationFailed(text, errors={field or "request": text}) from None


def get_model(session: Session, *, requester: User, model_id: int) -> TrainedModel:
    """One of the requester's models (someone else's → ``NotFound``)."""
    model = session.get(TrainedModel, model_id)
    if model is None or model.owner_id != requester.id:
        raise NotFound("No such model.")
    return model


def get_published_model(session: Session, *, requester: User, name: str) -> TrainedModel:
    """One of the requester's models by its published name (or ``#<id>``)."""
    if name.startswith("#") and name[1:].isdigit():
        return get_model(session, requester=requester, model_id=int(name[1:]))
    model = session.exec(
        select(TrainedModel).where(
            TrainedModel.owner_id == requester.id, TrainedModel.published_name == name
        )
    ).first()
    if model is None:
        raise NotFound(f"No published model named {name!r}.")
    return model


def list_models(
    session: Session, *, requester: User, collection_id: int | None = None
) -> list[TrainedModel]:
    """The requester's models (of one collection when given), newest first."""
    query = select(TrainedModel).where(TrainedModel.owner_id == requester.id)
    if collection_id is not None:
        query = query.where(TrainedModel.collection_id == collection_id)
    return list(session.exec(query.order_by(TrainedModel.id.desc())))


def list_published_models(session: Session, *, requester: User) -> list[TrainedModel]:
    """The requester's published models, by name."""
    query = (
        select(TrainedModel)
        .where(TrainedModel.owner_id == requester.id, TrainedModel.published_name.is_not(None))
        .order_by(TrainedModel.published_name)
    )
    return list(session.exec(query))


def model_job(session: Session, model: TrainedModel) -> Job | None:
    """The training job of a model, if it still exists."""
    return session.get(Job, model.job_id) if model.job_id else None


def _check_classes(session: Session, collection) -> None:
    """A multiclass collection trains with training images of at least two classes."""
    per_class = dict(
        session.exec(
            select(CollectionItem.label, func.count())
            .where(
                CollectionItem.collection_id == collection.id,
                CollectionItem.split == "train",
                CollectionItem.label.is_not(None),
            )
            .group_by(CollectionItem.label)
        ).all()
    )
    if len(per_class) < 2 or sum(per_class.values()) < 2:
        raise ValidationFailed(
            "The collection needs training images in at least two classes.",
            errors={"collection_id": "Needs at least two classes with training images."},
        )


def _check_multilabel_training(session: Session, collection) -> None:
    """A multilabel collection trains with training images of at least two tags."""
    from app.services.ml.multilabel import tag_counts

    counts = tag_counts(session, collection)
    if sum(1 for entry in counts.values() if entry["train"] > 0) < 2:
        raise ValidationFailed(
            "The collection needs training images of at least two tags.",
            errors={"collection_id": "Needs training images of at least two tags."},
        )


def start_training(
    session: Session,
    *,
    requester: User,
    collection_id: int,
    settings: dict,
    dispatch: bool = True,
) -> TrainedModel:
    """Create the next iteration of a collection's model and queue its training job.

    ``dispatch=False`` leaves the committed job for the caller to run (the CLI runs it in
    the foreground).
    """
    # Checking the settings imports timm and torch the first time in a process: seconds, a
    # minute on a busy machine. No transaction is held meanwhile: not a pooled connection
    # that the server may drop (then this request would fail a minute later), nor SQLite's
    # write lock (every other writer would wait).
    session.commit()
    config = build_config(settings)
    collection = get_collection(session, requester=requester, collection_id=collection_id)
    if collection.status != "ready":
        raise Conflict("The collection is not ready to train on yet.")
    if collection.classification_type == "multilabel":
        config.multilabel = True
        _check_multilabel_training(session, collection)
    else:
        _check_classes(session, collection)
    iteration = (
        session.exec(
            select(func.max(TrainedModel.iteration)).where(
                TrainedModel.collection_id == collection.id
            )
        ).one()
        or 0
    ) + 1
    model = TrainedModel(
        owner_id=requester.id,
        collection_id=collection.id,
        iteration=iteration,
        name=f"{collection.name} · iteration {iteration}",
        arch=config.arch,
        status=ModelStatus.QUEUED,
        config=config.to_dict(),
        classes=list(collection.classes),
    )
    session.add(model)
    session.flush()
    from app.services.jobs.records import create_job

    job = create_job(
        session,
        kind=TRAIN_JOB_KIND,
        owner=requester,
        payload={"model_id": model.id, "collection_id": collection.id},
    )
    model.job_id = job.id
    session.add(model)
    session.commit()
    if dispatch:
        from workers.queue import dispatch as queue_job

        queue_job(job.id)
        session.refresh(model)
    return model


def cancel_training(session: Session, *, requester: User, model_id: int) -> TrainedModel:
    """Ask a queued or running training to stop (it stops within a step)."""
    model = get_model(session, requester=requester, model_id=model_id)
    if model.status not in (ModelStatus.QUEUED, ModelStatus.TRAINING):
        raise Conflict("This model is not training.")
    job = model_job(session, model)
    was_running = job is not None and job.status == JobStatus.RUNNING
    if job is None:
        ended = True
    elif job.done:
        ended = job.status == JobStatus.CANCELLED
    else:
        ended = cancel_job_row(session, job)
    if ended:
        # Queued, or its worker had stopped: nobody else will record the cancel.
        model.status = ModelStatus.CANCELLED
        model.finished_at = utcnow()
        model.message = (
            job.message if was_running and job is not None else ("Cancelled before it started.")
        )
    session.add(model)
    session.commit()
    if was_running and ended:
        remove_work_dir(job.id)
    return model


def _check_published_name(session: Session, *, requester: User, model: TrainedModel, name: str):
    name = (name or "").strip()
    check_text(name, field="name", name=True)
    if not name:
        raise ValidationFailed("Give the published model a name.", errors={"name": "Required."})
    if len(name) > 200 or name.startswith("#"):
        raise ValidationFailed(
            "Use at most 200 characters, not starting with '#'.", errors={"name": "Invalid."}
        )
    clash = session.exec(
        select(TrainedModel).where(
            TrainedModel.owner_id == requester.id,
            TrainedModel.published_name == name,
            TrainedModel.id != model.id,
        )
    ).first()
    if clash is not None:
        raise ValidationFailed(
            f"Another of your models is already published as {name!r}.",
            errors={"name": "Already used by another model."},
        )
    return name


def publish_model(
    session: Session, *, requester: User, model_id: int, name: str
) -> tuple[TrainedModel, str]:
    """Publish a completed iteration under a name; returns the new prediction key (once)."""
    model = get_model(session, requester=requester, model_id=model_id)
    if model.status != ModelStatus.COMPLETED:
        raise Conflict("Only a completed training run can be published.")
    model.published_name = _check_published_name(
        session, requester=requester, model=model, name=name
    )
    key = PREDICTION_KEY_PREFIX + secrets.token_urlsafe(32)
    model.prediction_key_hash = hash_token(key)
    model.published_at = utcnow()
    session.add(model)
    session.commit()
    return model, key


def unpublish_model(session: Session, *, requester: User, model_id: int) -> TrainedModel:
    """Withdraw a published model; its prediction key stops working."""
    model = get_model(session, requester=requester, model_id=model_id)
    if model.published_name is None:
        raise Conflict("This model is not published.")
    model.published_name = None
    model.published_at = None
    model.prediction_key_hash = None
    session.add(model)
    session.commit()
    return model


def model_for_prediction_key(session: Session, *, model_id: int, key: str) -> TrainedModel | None:
    """The published model with this id whose prediction key is ``key``, if any."""
    model = session.get(TrainedModel, model_id)
    if model is None or not model.prediction_key_hash or model.published_name is None:
        return None
    if not secrets.compare_digest(model.prediction_key_hash, hash_token(key)):
        return None
    return model


def figure_path(session: Session, *, requester: User, model_id: int, figure: str) -> Path:
    """The PNG file of one evaluation figure of the requester's model."""
    model = get_model(session, requester=requester, model_id=model_id)
    if figure not in FIGURES or not model.checkpoint_dir:
        raise NotFound("No such figure.")
    path = Path(model.checkpoint_dir) / FIGURES[figure]
    if not path.is_file():
        raise NotFound("No such figure.")
    return path


def evaluation(model: TrainedModel) -> dict:
    """The figures a model page shows, from the metrics stored at the end of training."""
    metrics = model.metrics or {}
    per_class = metrics.get("per_class") or []
    curve = metrics.get("threshold_curve") or []
    return {
        "accuracy": metrics.get("accuracy"),
        "macro_precision": metrics.get("macro_precision"),
        "macro_recall": metrics.get("macro_recall"),
        "macro_f1": metrics.get("macro_f1"),
        "mean_average_precision": metrics.get("mean_average_precision"),
        "num_samples": metrics.get("num_samples"),
        # multilabel: overall precision / recall at the threshold, mAP, tag co-occurrence
        "multilabel": bool(metrics.get("multilabel")),
        "precision": metrics.get("precision"),
        "recall": metrics.get("recall"),
        "map": metrics.get("map"),
        "co_occurrence": metrics.get("co_occurrence") or [],
        "threshold": (model.config or {}).get("threshold", 0.5),
        "classes": list(model.classes or []),
        "per_class": per_class,
        "threshold_curve": curve,
        "history": metrics.get("history") or [],
        "has_figures": bool(model.checkpoint_dir)
        and (Path(model.checkpoint_dir) / FIGURES["training_curves"]).is_file(),
        "duration_seconds": metrics.get("duration_seconds"),
        "images_per_second": metrics.get("train_images_per_second"),
        "device": metrics.get("device"),
    }


def models_dir_for(model: TrainedModel) -> Path:
    """Where a model's checkpoint directory lives."""
    return get_settings().models_dir / str(model.id)


def collection_of(session: Session, model: TrainedModel) -> Collection | None:
    """The collection a model was trained on."""
    return session.get(Collection, model.collection_id)
