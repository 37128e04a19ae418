"""Custom Vision images: uploads with per-image statuses, listing, counting, tagging.

Images are the project collection's items; an item without a label is an untagged image.
Uploads are checked one by one: a bad image gets its own status (``ErrorImageFormat``,
``ErrorImageSize``, ...) and the others are kept; an image already in the project is
``OKDuplicate``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from sqlalchemy import delete, func, or_
from sqlmodel import Session, select

from app.compat.customvision.domain import (
    CustomVisionError,
    bump_revision,
    get_project,
    image_uuid,
    lock_project,
    not_found,
    parse_uuid,
    set_extra,
    tag_map,
    tag_names_by_id,
)
from app.db.models import Collection, CollectionItem, MediaFile, User
from app.errors import UploadRejected
from app.services.media import store as media
from app.services.ml.multilabel import is_multilabel, item_tags, set_item_tags

MAX_BATCH_IMAGES = 64
MAX_BATCH_TAGS = 20
MAX_TAKE = 256


@dataclass
class NewImage:
    """One image of an upload batch: its bytes (or a fetch error), name and tag ids."""

    name: str
    data: bytes | None
    tag_ids: list[str] = field(default_factory=list)
    source_url: str | None = None
    error: str | None = None  # the status to report when the bytes could not be had


@dataclass
class ImageResult:
    """The outcome of one uploaded image: status and the stored item, if any."""

    source_url: str | None
    status: str
    item: CollectionItem | None = None
    media: MediaFile | None = None


def _tag_names(collection: Collection, tag_ids: list[str]) -> list[str]:
    names_by_id = tag_names_by_id(collection)
    names = []
    for tag_id in tag_ids:
        name = names_by_id.get(parse_uuid(tag_id, "Tag"))
        if name is None:
            raise CustomVisionError(
                "BadRequestImageTags", f"Tag {tag_id} is not a tag of this project."
            )
        if name not in names:
            names.append(name)
    return names


def _status_for(exc: UploadRejected) -> str:
    text = exc.message.lower()
    if "limit" in text or "too large" in text or "decompression" in text:
        return "ErrorImageSize"
    return "ErrorImageFormat"


def create_images(
    session: Session,
    *,
    requester: User,
    project_id: str,
    images: list[NewImage],
    batch_tag_ids: list[str] | None = None,
) -> tuple[Collection, bool, list[ImageResult]]:
    """Store a batch of images; returns (project, all created, per-image results)."""
    collection = lock_project(
        session, get_project(session, requester=requester, project_id=project_id)
    )
    if not images:
        raise CustomVisionError("BadRequestImageBatch", "The batch has no images.")
    if len(images) > MAX_BATCH_IMAGES:
        raise CustomVisionError(
            "BadRequestExceededBatchSize",
            f"A batch holds at most {MAX_BATCH_IMAGES} images; this one has {len(images)}.",
        )
    batch_tags = _tag_names(collection, list(batch_tag_ids or []))
    existing = {
        media_id: item
        for item, media_id in session.exec(
            select(CollectionItem, CollectionItem.media_id).where(
                CollectionItem.collection_id == collection.id
            )
        ).all()
    }
    results: list[ImageResult] = []
    added = 0
    for image in images:
        names = list(dict.fromkeys(batch_tags + _tag_names(collection, image.tag_ids)))
        if image.error or image.data is None:
            results.append(ImageResult(image.source_url, image.error or "ErrorSource"))
            continue
        if len(names) > 1 and not is_multilabel(collection):
            results.append(ImageResult(image.source_url, "ErrorTagLimitExceed"))
            continue
        try:
            stored = media.store_image(session, owner=requester, data=image.data, name=image.name)
        except UploadRejected as exc:
            results.append(ImageResult(image.source_url, _status_for(exc)))
            continue
        label = names[0] if names else None
        item = existing.get(stored.id)
        if item is not None:
            if item.label is None and label is not None:
                if is_multilabel(collection):
                    set_item_tags(item, names)
                else:
                    item.label = label
                session.add(item)
                added += 1
            results.append(ImageResult(image.source_url, "OKDuplicate", item, stored))
            continue
        item = CollectionItem(
            collection_id=collection.id, media_id=stored.id, label=label, split="train"
        )
        if is_multilabel(collection) and names:  # several tags per image
            set_item_tags(item, names)
        session.add(item)
        session.flush()
        existing[stored.id] = item
        added += 1
        results.append(ImageResult(image.source_url, "OK", item, stored))
    if added:
        bump_revision(collection)
    count = session.exec(
        select(func.count()).where(CollectionItem.collection_id == collection.id)
    ).one()
    set_extra(collection, image_count=int(count))
    session.add(collection)
    session.commit()
    return collection, all(r.status == "OK" for r in results), results


def _image_query(collection: Collection, *, tagging: str, tag_names: list[str] | None):
    query = (
        select(CollectionItem, MediaFile)
        .join(MediaFile, MediaFile.id == CollectionItem.media_id)
        .where(CollectionItem.collection_id == collection.id)
    )
    if tagging == "Tagged":
        query = query.where(CollectionItem.label.is_not(None))
    elif tagging == "Untagged":
        query = query.where(CollectionItem.label.is_(None))
    if tag_names and is_multilabel(collection):  # the label holds the JSON list of tags
        query = query.where(
            or_(
                *(
                    CollectionItem.label.contains(
                        json.dumps(n, ensure_ascii=False), autoescape=True
                    )
                    for n in tag_names
                )
            )
        )
    elif tag_names:
        query = query.where(CollectionItem.label.in_(tag_names))
    return query


def list_images(
    session: Session,
    *,
    requester: User,
    project_id: str,
    tagging: str = "All",
    tag_ids: list[str] | None = None,
    order_by: str = "Newest",
    take: int = 50,
    skip: int = 0,
) -> tuple[Collection, list[tuple[CollectionItem, MediaFile]]]:
    """A page of the project's images (``tagging``: All, Tagged or Untagged)."""
    collection = get_project(session, requester=requester, project_id=project_id)
    if not 0 <= take <= MAX_TAKE or skip < 0:
        raise CustomVisionError("BadRequest", f"take must be 0-{MAX_TAKE} and skip 0 or more.")
    names = _tag_names(collection, tag_ids) if tag_ids else None
    query = _image_query(collection, tagging=tagging, tag_names=names)
    order = CollectionItem.id.asc() if order_by == "Oldest" else CollectionItem.id.desc()
    rows = session.exec(query.order_by(order).offset(skip).limit(take)).all()
    return collection, list(rows)


def get_images_by_ids(
    session: Session, *, requester: User, project_id: str, image_ids: list[str]
) -> tuple[Collection, list[tuple[CollectionItem, MediaFile]]]:
    """The project's images with these ids, in the order asked (unknown ids left out)."""
    collection = get_project(session, requester=requester, project_id=project_id)
    wanted = [parse_uuid(i, "Image") for i in image_ids]
    rows = session.exec(_image_query(collection, tagging="All", tag_names=None)).all()
    by_id = {image_uuid(item.id): (item, m) for item, m in rows}
    return collection, [by_id[i] for i in wanted if i in by_id]


def count_images(
    session: Session,
    *,
    requester: User,
    project_id: str,
    tagging: str = "All",
    tag_ids: list[str] | None = None,
) -> int:
    """How many images the project has (all, tagged or untagged; of some tags)."""
    collection = get_project(session, requester=requester, project_id=project_id)
    names = _tag_names(collection, tag_ids) if tag_ids else None
    query = _image_query(collection, tagging=tagging, tag_names=names).subquery()
    return int(session.exec(select(func.count()).select_from(query)).one())


def _items_by_uuid(session: Session, collection: Collection) -> dict[str, CollectionItem]:
    items = session.exec(
        select(CollectionItem).where(CollectionItem.collection_id == collection.id)
    ).all()
    return {image_uuid(item.id): item for item in items}


def delete_images(
    session: Session,
    *,
    requester: User,
    project_id: str,
    image_ids: list[str] | None,
    all_images: bool = False,
) -> None:
    """Remove images from the project (the stored files stay; other uses share them)."""
    collection = lock_project(
        session, get_project(session, requester=requester, project_id=project_id)
    )
    if all_images:
        session.exec(delete(CollectionItem).where(CollectionItem.collection_id == collection.id))
    else:
        wanted = {parse_uuid(i, "Image") for i in image_ids or []}
        for key, item in _items_by_uuid(session, collection).items():
            if key in wanted:
                session.delete(item)
    session.flush()
    count = session.exec(
        select(func.count()).where(CollectionItem.collection_id == collection.id)
    ).one()
    set_extra(collection, image_count=int(count))
    bump_revision(collection)
    session.add(collection)
    session.commit()


def tag_images(
    session: Session, *, requester: User, project_id: str, pairs: list[tuple[str, str]]
) -> dict[str, list[tuple[str, str]]]:
    """Tag images (``(image id, tag id)`` pairs); one tag per image (Multiclass)."""
    collection = lock_project(
        session, get_project(session, requester=requester, project_id=project_id)
    )
    names_by_id = tag_names_by_id(collection)
    items = _items_by_uuid(session, collection)
    summary: dict[str, list[tuple[str, str]]] = {"created": [], "duplicated": [], "exceeded": []}
    for image_id, tag_id in pairs:
        key, tag_key = parse_uuid(image_id, "Image"), parse_uuid(tag_id, "Tag")
        item, name = items.get(key), names_by_id.get(tag_key)
        if item is None:
            raise not_found("Image", image_id)
        if name is None:
            raise not_found("Tag", tag_id)
        if is_multilabel(collection):
            tags = item_tags(item)
            if name in tags:
                summary["duplicated"].append((key, tag_key))
            else:
                set_item_tags(item, [*tags, name])
                session.add(item)
                summary["created"].append((key, tag_key))
        elif item.label == name:
            summary["duplicated"].append((key, tag_key))
        elif item.label is not None:
            summary["exceeded"].append((key, tag_key))
        else:
            item.label = name
            session.add(item)
            summary["created"].append((key, tag_key))
    if summary["created"]:
        bump_revision(collection)
        session.add(collection)
    session.commit()
    return summary


def untag_images(
    session: Session, *, requester: User, project_id: str, image_ids: list[str], tag_ids: list[str]
) -> None:
    """Remove these tags from these images (they become untagged)."""
    collection = lock_project(
        session, get_project(session, requester=requester, project_id=project_id)
    )
    names = set(_tag_names(collection, tag_ids))
    wanted = {parse_uuid(i, "Image") for i in image_ids}
    for key, item in _items_by_uuid(session, collection).items():
        if key in wanted and is_multilabel(collection):
            left = [t for t in item_tags(item) if t not in names]
            if left:
                set_item_tags(item, left)
            else:  # no tag left: untagged
                item.label, item.labels = None, None
            session.add(item)
        elif key in wanted and item.label in names:
            item.label = None
            session.add(item)
    bump_revision(collection)
    session.add(collection)
    session.commit()


def image_view(collection: Collection, item: CollectionItem, stored: MediaFile) -> dict:
    """An image as the service sees it (URLs relative to the server; signed and expiring,
    like Azure's blob links, so a client can fetch them without its key)."""
    ids = tag_map(collection)
    url = media.signed_media_url(stored)
    return {
        "id": image_uuid(item.id),
        "created": item.created_at,
        "width": stored.width,
        "height": stored.height,
        "url": url,
        "tags": [
            {"tagId": ids.get(name), "tagName": name, "created": item.created_at}
            for name in (item_tags(item) if item.label else [])
        ],
    }
