"""Custom Vision per-image performance: an iteration's predictions on its validation images.

``get_image_performances`` lists the images the iteration was evaluated on (its validation
share), each with its own tag and the iteration's prediction for every tag, most probable
first; ``tagIds`` keeps images tagged with any of those tags, ``take``/``skip`` page.
"""

from __future__ import annotations

from sqlmodel import Session, select

from app.compat.customvision.domain import (
    CustomVisionError,
    image_uuid,
    parse_uuid,
    tag_id_for,
    tag_names_by_id,
)
from app.compat.customvision.iterations import get_iteration
from app.db.models import CollectionItem, MediaFile, ModelStatus, User
from app.errors import Conflict
from app.services.media import store as media
from app.services.ml.validation import validation_predictions

MAX_TAKE = 256


def _rows(session: Session, *, requester: User, project_id: str, iteration_id: str, tag_ids):
    collection, model = get_iteration(
        session, requester=requester, project_id=project_id, iteration_id=iteration_id
    )
    if model.status != ModelStatus.COMPLETED:
        raise CustomVisionError(
            "BadRequestIterationIsNotTrained", "The iteration has not finished training."
        )
    names = None
    if tag_ids:
        by_id = tag_names_by_id(collection)
        names = set()
        for tag_id in tag_ids:
            name = by_id.get(parse_uuid(tag_id, "Tag"))
            if name is None:
                raise CustomVisionError("NotFoundTag", f"Tag {tag_id} not found.", status_code=404)
            names.add(name)
    try:
        predictions = validation_predictions(session, model)
    except Conflict as exc:
        raise CustomVisionError("BadRequestIterationIsNotTrained", exc.message) from None
    items = session.exec(
        select(CollectionItem, MediaFile)
        .join(MediaFile, MediaFile.id == CollectionItem.media_id)
        .where(CollectionItem.id.in_(list(predictions)))
    ).all()
    rows = [(item, stored) for item, stored in items if names is None or item.label in names]
    return collection, model, predictions, rows


def list_image_performances(
    session: Session,
    *,
    requester: User,
    project_id: str,
    iteration_id: str,
    tag_ids: list[str] | None = None,
    order_by: str = "Newest",
    take: int = 50,
    skip: int = 0,
) -> list[dict]:
    """A page of the iteration's validation images with their predictions."""
    if not 0 <= take <= MAX_TAKE or skip < 0:
        raise CustomVisionError("BadRequest", f"take must be 0-{MAX_TAKE} and skip 0 or more.")
    if order_by not in ("Newest", "Oldest"):
        raise CustomVisionError("BadRequest", "orderBy must be Newest or Oldest.")
    collection, model, predictions, rows = _rows(
        session, requester=requester, project_id=project_id, iteration_id=iteration_id,
        tag_ids=tag_ids,
    )  # fmt: skip
    rows.sort(key=lambda row: row[0].id, reverse=order_by == "Newest")
    page = rows[skip : skip + take]
    out = []
    for item, stored in page:
        probs = predictions[item.id]
        ranked = sorted(zip(model.classes, probs, strict=True), key=lambda p: -p[1])
        out.append(
            {
                "item": item,
                "stored": stored,
                "tag_id": tag_id_for(collection, item.label) if item.label else None,
                "predictions": [
                    {
                        "probability": float(p),
                        "tagId": tag_id_for(collection, name),
                        "tagName": name,
                        "boundingBox": None,
                        "tagType": "Regular",
                    }
                    for name, p in ranked
                ],
            }
        )
    return out


def count_image_performances(
    session: Session,
    *,
    requester: User,
    project_id: str,
    iteration_id: str,
    tag_ids: list[str] | None = None,
) -> int:
    """How many validation images (tagged with any of ``tag_ids``) have predictions."""
    return len(
        _rows(
            session, requester=requester, project_id=project_id, iteration_id=iteration_id,
            tag_ids=tag_ids,
        )[3]
    )  # fmt: skip


def image_performance_json(row: dict, base_url: str) -> dict:
    """One row of ``list_image_performances`` as an ``ImagePerformance`` (dates as objects)."""
    item, stored = row["item"], row["stored"]
    url = base_url.rstrip("/") + media.media_url(stored)
    tags = []
    if item.label:
        tags = [{"tagId": row["tag_id"], "tagName": item.label, "created": item.created_at}]
    return {
        "predictions": row["predictions"],
        "id": image_uuid(item.id),
        "created": item.created_at,
        "width": stored.width,
        "height": stored.height,
        "imageUri": url,
        "thumbnailUri": url,
        "tags": tags,
        "regions": None,
    }
