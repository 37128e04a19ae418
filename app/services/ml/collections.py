"""Collections: labeled image sets from a ZIP of class folders or from an aggregation run.

Every collection keeps a stratified, seeded train/validation split in ``CollectionItem.split``.
Imports are all-or-nothing: every image is checked before anything is stored.
"""

from __future__ import annotations

import shutil
from collections import defaultdict
from pathlib import Path
from typing import BinaryIO

import numpy as np
from sqlalchemy import delete, func
from sqlmodel import Session, select

from app.db.models import Collection, CollectionItem, MediaFile, User
from app.errors import Conflict, NotFound, UploadRejected, ValidationFailed
from app.services.media import store as media
from app.services.projects import archive
from app.services.text import control_problem
from app.settings import get_settings

DEFAULT_VAL_FRACTION = 0.2
IMPORT_JOB_KIND = "collection_import"


# ----------------------------------------------------------------------------- reads


def get_collection(session: Session, *, requester: User, collection_id: int) -> Collection:
    """One of the requester's collections (someone else's → ``NotFound``)."""
    collection = session.get(Collection, collection_id)
    if collection is None or collection.owner_id != requester.id:
        raise NotFound("No such collection.")
    return collection


def get_collection_by_name(session: Session, *, requester: User, name: str) -> Collection:
    """One of the requester's collections by its name."""
    collection = session.exec(
        select(Collection).where(Collection.owner_id == requester.id, Collection.name == name)
    ).first()
    if collection is None:
        raise NotFound(f"No collection named {name!r}.")
    return collection


def list_collections(session: Session, *, requester: User) -> list[Collection]:
    """The requester's collections, newest first."""
    query = (
        select(Collection).where(Collection.owner_id == requester.id).order_by(Collection.id.desc())
    )
    return list(session.exec(query))


def class_counts(session: Session, *, collection_ids: list[int]) -> dict[int, dict[str, dict]]:
    """``{collection id: {label: {"train": n, "val": m, "total": n + m}}}`` in class order."""
    if not collection_ids:
        return {}
    rows = session.exec(
        select(
            CollectionItem.collection_id,
            CollectionItem.label,
            CollectionItem.split,
            func.count(),
        )
        .where(CollectionItem.collection_id.in_(collection_ids))
        .group_by(CollectionItem.collection_id, CollectionItem.label, CollectionItem.split)
    ).all()
    counts: dict[int, dict[str, dict]] = {cid: {} for cid in collection_ids}
    for cid, label, split, n in rows:
        entry = counts[cid].setdefault(label or "", {"train": 0, "val": 0, "total": 0})
        entry[split] = entry.get(split, 0) + n
        entry["total"] += n
    return {cid: dict(sorted(per.items())) for cid, per in counts.items()}


def thumbnails(
    session: Session, *, collection: Collection, per_class: int = 0, limit: int = 6
) -> dict[str, list[str]] | list[str]:
    """Image URLs: ``limit`` of the whole collection, or ``per_class`` of each class."""
    base = (
        select(CollectionItem.label, MediaFile)
        .join(MediaFile, MediaFile.id == CollectionItem.media_id)
        .where(CollectionItem.collection_id == collection.id)
        .order_by(CollectionItem.id)
    )
    if not per_class:
        return [media.media_url(m) for _, m in session.exec(base.limit(limit)).all()]
    result: dict[str, list[str]] = {}
    for label in collection.classes:
        rows = session.exec(base.where(CollectionItem.label == label).limit(per_class)).all()
        result[label] = [media.media_url(m) for _, m in rows]
    return result


def collection_items(
    session: Session, *, collection: Collection
) -> list[tuple[CollectionItem, MediaFile]]:
    """Every labeled item of a collection with its media file, in insertion order."""
    query = (
        select(CollectionItem, MediaFile)
        .join(MediaFile, MediaFile.id == CollectionItem.media_id)
        .where(CollectionItem.collection_id == collection.id, CollectionItem.label.is_not(None))
        .order_by(CollectionItem.id)
    )
    return list(session.exec(query).all())


# ----------------------------------------------------------------------------- split


def stratified_split(labels: list[str], *, val_fraction: float, seed: int) -> list[str]:
    """``"train"``/``"val"`` per position: each class keeps ``val_fraction`` for validation.

    A class with one image stays in training; a class with two or more gives at least
    one image to validation when ``val_fraction > 0``. Deterministic for a seed.
    """
    rng = np.random.default_rng(seed)
    by_class: dict[str, list[int]] = defaultdict(list)
    for index, label in enumerate(labels):
        by_class[label].append(index)
    splits = ["train"] * len(labels)
    for label in sorted(by_class):
        indices = by_class[label]
        n_val = int(round(len(indices) * val_fraction))
        if val_fraction > 0 and len(indices) >= 2:
            n_val = max(1, n_val)
        n_val = min(n_val, len(indices) - 1)
        for position in rng.permutation(len(indices))[:n_val]:
            splits[indices[int(position)]] = "val"
    return splits


def _check_settings(name: str, val_fraction: float, seed: int) -> tuple[str, float, int]:
    errors: dict[str, str] = {}
    name = (name or "").strip()
    if problem := control_problem(name, name=True):
        errors["name"] = problem
    elif not name:
        errors["name"] = "Give the collection a name."
    elif len(name) > 200:
        errors["name"] = "At most 200 characters."
    if not 0.0 <= val_fraction <= 0.5:
        errors["val_fraction"] = "Use a validation share between 0 and 0.5."
    if seed < 0:
        errors["seed"] = "Use a seed of 0 or more."
    if errors:
        raise ValidationFailed("Please fix the highlighted fields.", errors=errors)
    return name, val_fraction, seed


def _claim_name(session: Session, *, requester: User, name: str) -> None:
    """Refuse a taken name; a failed import under that name is removed to free it."""
    existing = session.exec(
        select(Collection).where(Collection.owner_id == requester.id, Collection.name == name)
    ).first()
    if existing is None:
        return
    if existing.status == "failed":
        session.delete(existing)
        session.flush()
        return
    raise ValidationFailed(
        f"You already have a collection named {name!r}.", errors={"name": "Already used."}
    )


def _add_items(
    session: Session,
    collection: Collection,
    rows: list[tuple[int, str, int | None, float | None]],
) -> None:
    """Add ``(media id, label, task id, confidence)`` rows with their split (flushes)."""
    seen: set[tuple[int, str]] = set()
    unique = []
    for row in rows:
        if (row[0], row[1]) not in seen:
            seen.add((row[0], row[1]))
            unique.append(row)
    splits = stratified_split(
        [label for _, label, _, _ in unique],
        val_fraction=collection.val_fraction,
        seed=collection.seed,
    )
    for (media_id, label, task_id, confidence), split in zip(unique, splits, strict=True):
        session.add(
            CollectionItem(
                collection_id=collection.id,
                media_id=media_id,
                label=label,
                split=split,
                source_task_id=task_id,
                confidence=confidence,
            )
        )
    collection.classes = sorted({label for _, label, _, _ in unique})
    collection.extra = {**collection.extra, "image_count": len(unique)}
    session.add(collection)
    session.flush()


# ----------------------------------------------------------------------------- ZIP import


def _scan(file: BinaryIO):
    """Scan a ZIP and check the class layout: two or more classes, none of them empty."""
    zip_file, entries = archive.scan_class_folders(file)
    labels = {entry.label for entry in entries}
    depth = len(Path(entries[0].path).parts) - 1  # the class folder's position + 1
    for info in zip_file.infolist():
        parts = [p for p in info.filename.split("/") if p]
        if info.is_dir() and len(parts) == depth and parts[-1] not in archive.IGNORED_PARTS:
            if parts[-1] not in labels and not parts[-1].startswith("."):
                raise UploadRejected(
                    f"The class folder {info.filename!r} has no images.", file=info.filename
                )
    if len(labels) < 2:
        raise UploadRejected(
            f"The archive has only one class ({next(iter(labels))!r}); a classifier needs "
            "at least two class folders."
        )
    return zip_file, entries


def count_zip_images(file: BinaryIO) -> int:
    """How many images a class-folder ZIP holds (checks the layout on the way)."""
    _, entries = _scan(file)
    file.seek(0)
    return len(entries)


def _check_zip(file: BinaryIO, progress=None):
    """Check the layout and every image of an archive; nothing is stored."""
    zip_file, entries = _scan(file)
    total = len(entries)
    for index, (entry, data) in enumerate(archive.iter_images(zip_file, entries), start=1):
        media.inspect_image(data, name=entry.path)
        if progress is not None and index % 50 == 0:
            progress(0.5 * index / total, f"Checked {index} of {total} images")
    return zip_file, entries


STORE_BATCH = 50  # images stored per short transaction by the import job


def _store_zip(
    session: Session,
    *,
    collection: Collection,
    owner: User,
    checked,
    progress=None,
    commit_every: int | None = None,
) -> None:
    """Store the checked images and add the items (flushes; the caller commits).

    ``commit_every`` (a job): the stored images are committed every so many, so no write
    lock is held for long; the items themselves are added at the end, in the caller's
    transaction (a failed import leaves stored files, never a half-filled collection)."""
    zip_file, entries = checked
    total = len(entries)
    rows = []
    for index, (entry, data) in enumerate(archive.iter_images(zip_file, entries), start=1):
        stored = media.store_image(session, owner=owner, data=data, name=entry.path)
        rows.append((stored.id, entry.label, None, None))
        if commit_every and index % commit_every == 0:
            session.commit()
        if progress is not None and index % 50 == 0:
            progress(0.5 + 0.5 * index / total, f"Stored {index} of {total} images")
    _add_items(session, collection, rows)


def create_collection_from_zip(
    session: Session,
    *,
    requester: User,
    file: BinaryIO,
    name: str,
    description: str = "",
    val_fraction: float = DEFAULT_VAL_FRACTION,
    seed: int = 0,
    background: bool | None = None,
) -> Collection:
    """Create a collection from a ZIP of class folders (``Dataset/Class/img.jpg``).

    Small archives are imported now; archives with more images than the
    ``upload_job_threshold`` setting (or ``background=True``) become a job, and the
    collection stays ``importing`` until it finishes. Bad archives raise
    ``UploadRejected`` naming the problem and leave nothing behind.
    """
    name, val_fraction, seed = _check_settings(name, val_fraction, seed)
    images = count_zip_images(file)
    if background is None:
        background = images > get_settings().upload_job_threshold
    checked = None if background else _check_zip(file)
    _claim_name(session, requester=requester, name=name)
    collection = Collection(
        owner_id=requester.id,
        name=name,
        description=description.strip()[:2000],
        source="zip",
        status="importing" if background else "ready",
        val_fraction=val_fraction,
        seed=seed,
    )
    session.add(collection)
    session.flush()
    if not background:
        try:
            _store_zip(session, collection=collection, owner=requester, checked=checked)
        except Exception:
            session.rollback()
            raise
        session.commit()
        return collection

    from app.services.jobs.records import create_job

    uploads = get_settings().data_dir / "uploads"
    uploads.mkdir(parents=True, exist_ok=True)
    path = uploads / f"collection-{collection.id}.zip"
    file.seek(0)
    with open(path, "wb") as handle:
        shutil.copyfileobj(file, handle)
    job = create_job(
        session,
        kind=IMPORT_JOB_KIND,
        owner=requester,
        payload={"collection_id": collection.id, "path": str(path), "images": images},
    )
    collection.job_id = job.id
    session.add(collection)
    session.commit()
    from workers.queue import dispatch

    dispatch(job.id)
    session.refresh(collection)
    return collection


def run_zip_import(session: Session, *, collection_id: int, path: str, progress=None) -> int:
    """The body of the import job: import the saved archive into its collection."""
    collection = session.get(Collection, collection_id)
    if collection is None:
        raise NotFound("The collection was deleted before its import ran.")
    if collection.status == "ready":
        return int(collection.extra.get("image_count", 0))
    owner = session.get(User, collection.owner_id)
    session.commit()  # no write lock held while the images are checked
    with open(path, "rb") as handle:
        checked = _check_zip(handle, progress)
        _store_zip(
            session, collection=collection, owner=owner, checked=checked, progress=progress,
            commit_every=STORE_BATCH,
        )  # fmt: skip
    collection.status = "ready"
    session.add(collection)
    session.commit()
    Path(path).unlink(missing_ok=True)
    return int(collection.extra.get("image_count", 0))


def mark_import_failed(session: Session, *, collection_id: int, message: str, path: str) -> None:
    """Record a failed import: no items kept, the error shown on the collection."""
    collection = session.get(Collection, collection_id)
    Path(path).unlink(missing_ok=True)
    if collection is None:
        return
    session.exec(delete(CollectionItem).where(CollectionItem.collection_id == collection_id))
    collection.status = "failed"
    collection.extra = {**collection.extra, "error": message}
    session.add(collection)
    session.commit()


def delete_collection(session: Session, *, requester: User, collection_id: int) -> None:
    """Delete a collection, its items and its trained models' rows."""
    collection = get_collection(session, requester=requester, collection_id=collection_id)
    if collection.status == "importing":
        raise Conflict("The collection is still importing; wait for it to finish.")
    session.delete(collection)
    session.commit()


# for the multilabel collections (``app.services.ml.multilabel``)
check_collection_settings = _check_settings
claim_collection_name = _claim_name
