"""Custom Vision iterations: training, performance, publishing and prediction.

An iteration is a trained model of the project's collection. ``train_project`` starts a
real training job with the settings of ``train_settings`` (Custom Vision has no choice of
architecture: ``resnet18`` by default, overridable per deployment with ``CROWDLAB_CV_*``
environment variables or per project with ``Collection.extra["train_settings"]``).

Publishing and prediction are in ``customvision_publishing``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from sqlmodel import Session, select

from app.compat.customvision.domain import (
    SOURCE,
    CustomVisionError,
    domain_of,
    get_domain,
    get_project,
    iteration_uuid,
    lock_project,
    parse_uuid,
    project_uuid,
    set_extra,
    tag_counts,
    tag_id_for,
)
from app.db.models import Collection, CollectionItem, ModelStatus, TrainedModel, User
from app.services.ml import trained_models
from app.services.ml.collections import stratified_split
from app.services.ml.multilabel import is_multilabel
from app.services.text import control_problem

MIN_TAGS = 2
MIN_IMAGES_PER_TAG = 5
DEFAULT_THRESHOLD = 0.5
RUNNING = (ModelStatus.QUEUED, ModelStatus.TRAINING)
# Deployment-wide training settings: environment variable → TrainConfig field and type.
ENV_SETTINGS = {
    "CROWDLAB_CV_ARCH": ("arch", str),
    "CROWDLAB_CV_EPOCHS": ("epochs", int),
    "CROWDLAB_CV_IMAGE_SIZE": ("image_size", int),
    "CROWDLAB_CV_BATCH_SIZE": ("batch_size", int),
    "CROWDLAB_CV_LR": ("lr", float),
    "CROWDLAB_CV_DEVICE": ("device", str),
    "CROWDLAB_CV_AUGMENTATION": ("augmentation", str),
    "CROWDLAB_CV_PRETRAINED": ("pretrained", lambda v: v.strip().lower() in ("1", "true", "yes")),
}


def train_settings(collection: Collection) -> dict:
    """The training settings of a project: defaults < ``CROWDLAB_CV_*`` < the project's own."""
    values = dict(trained_models.DEFAULT_SETTINGS)
    for env, (key, cast) in ENV_SETTINGS.items():
        if os.environ.get(env):
            values[key] = cast(os.environ[env])
    if os.environ.get("CROWDLAB_CV_TRAIN_SETTINGS"):
        values.update(json.loads(os.environ["CROWDLAB_CV_TRAIN_SETTINGS"]))
    extra = collection.extra or {}
    values.update(extra.get("train_settings") or {})
    if extra.get("arch"):
        values["arch"] = extra["arch"]
    return values


# ----------------------------------------------------------------------------- reads


def list_iterations(session: Session, *, requester: User, project_id: str):
    """The project and its iterations, oldest first."""
    collection = get_project(session, requester=requester, project_id=project_id)
    models = trained_models.list_models(session, requester=requester, collection_id=collection.id)
    return collection, list(reversed(models))


def get_iteration(
    session: Session, *, requester: User, project_id: str, iteration_id: str
) -> tuple[Collection, TrainedModel]:
    """The project and one of its iterations (``NotFoundIteration`` otherwise)."""
    collection, models = list_iterations(session, requester=requester, project_id=project_id)
    wanted = parse_uuid(iteration_id, "Iteration")
    for model in models:
        if iteration_uuid(model.id) == wanted:
            return collection, model
    raise CustomVisionError(
        "NotFoundIteration", f"Iteration {iteration_id} not found.", status_code=404
    )


def publish_names(collection: Collection) -> dict[int, str]:
    """``{model id: Custom Vision publish name}``."""
    published = (collection.extra or {}).get("published") or {}
    return {int(model_id): name for name, model_id in published.items()}


def iteration_domain(collection: Collection, model: TrainedModel) -> dict:
    """The domain an iteration was trained in (the project's, for older iterations)."""
    info = ((collection.extra or {}).get("iterations") or {}).get(str(model.iteration)) or {}
    if info.get("domainId"):
        return get_domain(info["domainId"])
    return domain_of(collection)


def iteration_view(collection: Collection, model: TrainedModel) -> dict:
    """An iteration as the service describes it (camelCase keys, datetimes as objects)."""
    extra = collection.extra or {}
    info = (extra.get("iterations") or {}).get(str(model.iteration)) or {}
    status = {
        ModelStatus.COMPLETED: "Completed",
        ModelStatus.FAILED: "Failed",
        ModelStatus.CANCELLED: "Failed",
    }.get(model.status, "Training")
    default_name = f"{collection.name} · iteration {model.iteration}"
    published = model.published_name is not None
    publish_name = publish_names(collection).get(model.id) or model.published_name
    seconds = (model.metrics or {}).get("duration_seconds") or 0
    platforms = list(iteration_domain(collection, model)["exportablePlatforms"])
    return {
        "id": iteration_uuid(model.id),
        "name": f"Iteration {model.iteration}" if model.name == default_name else model.name,
        "status": status,
        "created": model.created_at,
        "lastModified": model.finished_at or model.started_at or model.created_at,
        "trainedAt": model.finished_at if status == "Completed" else None,
        "projectId": project_uuid(collection.id),
        "exportable": status == "Completed" and bool(platforms),
        "exportableTo": platforms if status == "Completed" else [],
        "domainId": iteration_domain(collection, model)["id"],
        "classificationType": "Multilabel" if is_multilabel(collection) else "Multiclass",
        "trainingType": info.get("trainingType") or "Regular",
        "reservedBudgetInHours": int(info.get("reservedBudgetInHours") or 0),
        "trainingTimeInMinutes": int(round(seconds / 60)),
        "publishName": publish_name if published else None,
        "originalPublishResourceId": info.get("predictionId") if published else None,
        "customBaseModelInfo": None,
        "trainingErrorDetails": (model.message or "Training failed.")
        if status == "Failed"
        else None,
    }


# ----------------------------------------------------------------------------- training


def training_data_fingerprint(session: Session, collection: Collection) -> str:
    """A digest of what training learns from: the tags and every tagged image's tag.

    Untagged images, names and descriptions do not change it; adding, removing or
    re-tagging a tagged image, adding or removing a tag, or a new domain does.
    """
    rows = session.exec(
        select(CollectionItem.id, CollectionItem.label)
        .where(CollectionItem.collection_id == collection.id, CollectionItem.label.is_not(None))
        .order_by(CollectionItem.id)
    ).all()
    domain = domain_of(collection)["id"]
    digest = hashlib.sha256(json.dumps([domain, sorted(collection.classes)]).encode())
    for item_id, label in rows:
        digest.update(f"\n{item_id}\t{label}".encode())
    return digest.hexdigest()


def _check_training_data(session: Session, collection: Collection) -> None:
    counts = tag_counts(session, collection)
    tags = list(collection.classes)
    problems = []
    if len(tags) < MIN_TAGS:
        have = ", ".join(repr(t) for t in tags) or "none"
        problems.append(f"the project has {len(tags)} tag(s) ({have}); add at least {MIN_TAGS}")
    short = [t for t in tags if counts.get(t, 0) < MIN_IMAGES_PER_TAG]
    for tag in short:
        n = counts.get(tag, 0)
        problems.append(f"tag {tag!r} has {n} image(s), {MIN_IMAGES_PER_TAG - n} more needed")
    if problems:
        raise CustomVisionError(
            "BadRequestTrainingValidationFailed",
            f"Training needs at least {MIN_TAGS} tags with at least {MIN_IMAGES_PER_TAG} images "
            "each: " + "; ".join(problems) + ".",
        )


def _resplit(session: Session, collection: Collection) -> None:
    """Give every tag a validation share (the performance figures are measured on it)."""
    items = session.exec(
        select(CollectionItem)
        .where(CollectionItem.collection_id == collection.id, CollectionItem.label.is_not(None))
        .order_by(CollectionItem.id)
    ).all()
    splits = stratified_split(
        [item.label for item in items], val_fraction=collection.val_fraction, seed=collection.seed
    )
    for item, split in zip(items, splits, strict=True):
        if item.split != split:
            item.split = split
            session.add(item)
    session.flush()


def train_project(
    session: Session,
    *,
    requester: User,
    project_id: str,
    training_type: str | None = None,
    reserved_budget_in_hours: int = 0,
    force_train: bool = False,
) -> tuple[Collection, TrainedModel]:
    """Start training the next iteration; returns at once (status ``Training``)."""
    collection = lock_project(
        session, get_project(session, requester=requester, project_id=project_id)
    )
    models = trained_models.list_models(session, requester=requester, collection_id=collection.id)
    if any(m.status in RUNNING for m in models):
        raise CustomVisionError(
            "BadRequestTrainingAlreadyInProgress", "An iteration of this project is training."
        )
    _check_training_data(session, collection)
    extra = collection.extra or {}
    revision = int(extra.get("revision", 0))
    iterations = dict(extra.get("iterations") or {})
    fingerprint = training_data_fingerprint(session, collection)
    last = next((m for m in models if m.status == ModelStatus.COMPLETED), None)
    if (
        last is not None
        and not force_train
        and (iterations.get(str(last.iteration)) or {}).get("data") == fingerprint
    ):
        raise CustomVisionError(
            "BadRequestTrainingNotNeeded",
            f"No tagged image was added, removed or re-tagged since Iteration {last.iteration}; "
            "pass forceTrain=true to train anyway.",
        )
    if collection.source == SOURCE:
        _resplit(session, collection)
    number = max((m.iteration for m in models), default=0) + 1
    iterations[str(number)] = {
        "revision": revision,
        "data": fingerprint,
        "domainId": domain_of(collection)["id"],
        "trainingType": training_type or "Regular",
        "reservedBudgetInHours": reserved_budget_in_hours,
    }
    set_extra(collection, iterations=iterations)
    session.add(collection)
    model = trained_models.start_training(
        session,
        requester=requester,
        collection_id=collection.id,
        settings=train_settings(collection),
        dispatch=False,
    )
    from workers.queue import dispatch

    dispatch(model.job_id)
    session.refresh(model)
    return collection, model


def update_iteration(
    session: Session, *, requester: User, project_id: str, iteration_id: str, name: str
) -> tuple[Collection, TrainedModel]:
    """Rename an iteration."""
    collection, model = get_iteration(
        session, requester=requester, project_id=project_id, iteration_id=iteration_id
    )
    name = (name or "").strip()
    if not name or len(name) > 200 or control_problem(name, name=True):
        raise CustomVisionError(
            "BadRequest", "Give the iteration a name (1-200 characters, no control characters)."
        )
    model.name = name
    session.add(model)
    session.commit()
    return collection, model


def delete_iteration(
    session: Session, *, requester: User, project_id: str, iteration_id: str
) -> None:
    """Delete an iteration that is neither training nor published, with its checkpoint."""
    _, model = get_iteration(
        session, requester=requester, project_id=project_id, iteration_id=iteration_id
    )
    if model.status in RUNNING:
        raise CustomVisionError(
            "BadRequestIterationIsTraining", "The iteration is training; wait for it to end."
        )
    if model.published_name is not None:
        raise CustomVisionError(
            "BadRequestIterationIsPublished", "Unpublish the iteration before deleting it."
        )
    directory = model.checkpoint_dir
    session.delete(model)
    session.commit()
    if directory:
        shutil.rmtree(Path(directory), ignore_errors=True)


def get_performance(
    session: Session,
    *,
    requester: User,
    project_id: str,
    iteration_id: str,
    threshold: float | None = None,
) -> dict:
    """Precision and recall (overall and per tag) at a threshold, and average precision.

    Measured on the validation images at the end of training, at the thresholds
    0, 0.05, ..., 1; the threshold asked for is rounded to the nearest of them.
    """
    collection, model = get_iteration(
        session, requester=requester, project_id=project_id, iteration_id=iteration_id
    )
    threshold = DEFAULT_THRESHOLD if threshold is None else float(threshold)
    if not 0.0 <= threshold <= 1.0:
        raise CustomVisionError("BadRequest", "threshold must be between 0 and 1.")
    if model.status != ModelStatus.COMPLETED:
        raise CustomVisionError(
            "BadRequestIterationIsNotTrained", "The iteration has not finished training."
        )
    metrics = model.metrics or {}
    curve = metrics.get("threshold_curve") or []
    if not curve:
        raise CustomVisionError(
            "NotFoundIterationPerformance",
            "The iteration has no validation images, so no performance figures.",
            status_code=404,
        )
    point = min(curve, key=lambda p: abs(p["threshold"] - threshold))
    ap = {pc.get("class"): pc.get("average_precision") for pc in metrics.get("per_class") or []}
    per_tag = [
        {
            "id": tag_id_for(collection, name),
            "name": name,
            "precision": point["per_class_precision"][i],
            "precisionStdDeviation": 0.0,
            "recall": point["per_class_recall"][i],
            "recallStdDeviation": 0.0,
            "averagePrecision": ap.get(name),
        }
        for i, name in enumerate(model.classes)
    ]
    return {
        "perTagPerformance": per_tag,
        "precision": point["precision"],
        "precisionStdDeviation": 0.0,
        "recall": point["recall"],
        "recallStdDeviation": 0.0,
        "averagePrecision": metrics.get("mean_average_precision"),
    }
