"""Custom Vision publishing and prediction.

Publish names are per project, as in Azure (``extra["published"]``: name → model id); the
model is also published in Crowdlab, under the same name when it is free among the owner's
models, else under ``"<project name>/<name>"``. A prediction answers every tag, most
probable first (softmax: the probabilities sum to 1).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from sqlmodel import Session, select

from app.compat.customvision.domain import (
    CustomVisionError,
    get_project,
    iteration_uuid,
    lock_project,
    project_uuid,
    set_extra,
    tag_id_for,
)
from app.compat.customvision.iterations import get_iteration, list_iterations
from app.db.models import Collection, ModelStatus, TrainedModel, User
from app.db.types import utcnow
from app.security import hash_token
from app.services.ml import inference, trained_models


def _crowdlab_name(session: Session, *, collection: Collection, model: TrainedModel, name: str):
    """A Crowdlab published name for ``name`` that no other model of the owner uses."""
    for candidate in (name, f"{collection.name}/{name}", f"{collection.name}/{name}#{model.id}"):
        clash = session.exec(
            select(TrainedModel.id).where(
                TrainedModel.owner_id == model.owner_id,
                TrainedModel.published_name == candidate[:200],
                TrainedModel.id != model.id,
            )
        ).first()
        if clash is None:
            return candidate[:200]
    raise CustomVisionError("BadRequestInvalidPublishName", f"Publish name {name!r} is taken.")


def publish_iteration(
    session: Session,
    *,
    requester: User,
    project_id: str,
    iteration_id: str,
    publish_name: str,
    prediction_id: str,
    overwrite: bool = False,
) -> None:
    """Publish a completed iteration under a name of the project (idempotent)."""
    collection, model = get_iteration(
        session, requester=requester, project_id=project_id, iteration_id=iteration_id
    )
    collection = lock_project(session, collection)
    name = (publish_name or "").strip()
    if not name or len(name) > 150 or name.startswith("#"):
        raise CustomVisionError(
            "BadRequestInvalidPublishName", "Give a publish name of 1-150 characters."
        )
    if model.status != ModelStatus.COMPLETED:
        raise CustomVisionError(
            "BadRequestIterationIsNotTrained", "Only a completed iteration can be published."
        )
    published = dict((collection.extra or {}).get("published") or {})
    holder_id = published.get(name)
    if holder_id is not None and holder_id != model.id:
        holder = session.get(TrainedModel, holder_id)
        if holder is not None and holder.published_name is not None:
            if not overwrite:
                raise CustomVisionError(
                    "BadRequestInvalidPublishName",
                    f"Another iteration is published as {name!r}; pass overwrite=true.",
                )
            trained_models.unpublish_model(session, requester=requester, model_id=holder.id)
    published = {n: mid for n, mid in published.items() if mid != model.id and n != name}
    published[name] = model.id
    iterations = dict((collection.extra or {}).get("iterations") or {})
    info = dict(iterations.get(str(model.iteration)) or {})
    info["predictionId"] = prediction_id
    iterations[str(model.iteration)] = info
    set_extra(collection, published=published, iterations=iterations)
    session.add(collection)
    if model.published_name is None:
        crowdlab_name = _crowdlab_name(session, collection=collection, model=model, name=name)
        trained_models.publish_model(
            session, requester=requester, model_id=model.id, name=crowdlab_name
        )
    else:
        session.commit()


def unpublish_iteration(
    session: Session, *, requester: User, project_id: str, iteration_id: str
) -> None:
    """Withdraw a published iteration (its prediction endpoint stops answering)."""
    collection, model = get_iteration(
        session, requester=requester, project_id=project_id, iteration_id=iteration_id
    )
    if model.published_name is None:
        raise CustomVisionError(
            "BadRequestIterationNotPublished", "The iteration is not published."
        )
    collection = lock_project(session, collection)
    published = (collection.extra or {}).get("published") or {}
    set_extra(collection, published={n: m for n, m in published.items() if m != model.id})
    session.add(collection)
    trained_models.unpublish_model(session, requester=requester, model_id=model.id)


# ----------------------------------------------------------------------------- prediction


def model_for_key(session: Session, key: str) -> TrainedModel | None:
    """The published model whose own Crowdlab prediction key is ``key``, if any."""
    model = session.exec(
        select(TrainedModel).where(TrainedModel.prediction_key_hash == hash_token(key))
    ).first()
    return model if model is not None and model.published_name is not None else None


def _published_model(session: Session, collection: Collection, name: str) -> TrainedModel:
    model_id = ((collection.extra or {}).get("published") or {}).get(name)
    model = session.get(TrainedModel, model_id) if model_id is not None else None
    if model is None or model.collection_id != collection.id or model.published_name is None:
        model = session.exec(
            select(TrainedModel).where(
                TrainedModel.collection_id == collection.id, TrainedModel.published_name == name
            )
        ).first()
    if model is None:
        raise CustomVisionError(
            "NotFound", f"No iteration of this project is published as {name!r}.", status_code=404
        )
    return model


def _prediction(collection: Collection, model: TrainedModel, ranked: list) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "project": project_uuid(collection.id),
        "iteration": iteration_uuid(model.id),
        "created": utcnow(),
        "predictions": [
            {
                "probability": float(probability),
                "tagId": tag_id_for(collection, label),
                "tagName": label,
                "tagType": "Regular",
                "boundingBox": None,
            }
            for label, probability in ranked
        ],
    }


def classify_image(
    session: Session,
    *,
    requester: User,
    project_id: str,
    published_name: str,
    data: bytes | Callable[[], bytes],
    only_model_id: int | None = None,
) -> dict:
    """Classify one image with a published iteration: every tag, most probable first.

    ``only_model_id`` is set when the caller authenticated with that model's own
    prediction key: no other model may answer. ``data`` may be a function that fetches
    the image: it is called only once the project and iteration are known to be the
    caller's (the server fetches nothing for a stranger's project).
    """
    collection = get_project(session, requester=requester, project_id=project_id)
    model = _published_model(session, collection, published_name)
    if only_model_id is not None and model.id != only_model_id:
        raise CustomVisionError(
            "Unauthorized", "This prediction key belongs to another model.", status_code=401
        )
    image = data() if callable(data) else data
    ranked = inference.predict_bytes(model, data=image, name="imageData", top_k=None)
    return _prediction(collection, model, ranked)


def quick_test_image(
    session: Session,
    *,
    requester: User,
    project_id: str,
    data: bytes | Callable[[], bytes],
    iteration_id: str | None,
) -> dict:
    """Classify one image with an iteration (the latest completed one by default); a
    fetching ``data`` function runs only after the project and iteration are checked."""
    if iteration_id:
        collection, model = get_iteration(
            session, requester=requester, project_id=project_id, iteration_id=iteration_id
        )
    else:
        collection, models = list_iterations(session, requester=requester, project_id=project_id)
        done = [m for m in models if m.status == ModelStatus.COMPLETED]
        if not done:
            raise CustomVisionError(
                "BadRequestIterationIsNotTrained", "The project has no trained iteration yet."
            )
        model = done[-1]
    image = data() if callable(data) else data
    ranked = inference.predict_bytes(model, data=image, name="imageData", top_k=None)
    return _prediction(collection, model, ranked)
