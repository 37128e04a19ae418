"""Multilabel collections: any number of tags per image.

An item of a multilabel collection keeps its tags in ``CollectionItem.labels`` (a list) and,
in ``label``, the JSON text of that list (so "tagged" / "untagged" queries work alike for
both kinds): ``[]`` is an image known to show none of the tags (a negative example that
trains), ``label`` None an image nobody tagged yet (Custom Vision's "untagged"). They come
from:

* an aggregation run of a checkbox project: an image is kept when **every** option's
  probability is decisive, at or above ``min_confidence`` (the tag is there) or at or below
  ``1 - min_confidence`` (it is not); its tags are the options at or above 0.5;
* a ZIP with a manifest (folders cannot say that an image has several tags):
  ``manifest.csv`` with columns ``image`` and ``tags`` (tags separated by ``;``), or
  ``manifest.json``, either ``{"path/in/zip.jpg": ["cat", "dog"], ...}`` or a list of
  ``{"image": ..., "tags": [...]}``.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections import Counter
from collections.abc import Sequence
from typing import BinaryIO

import numpy as np
from sqlmodel import Session, select

from app.db.models import AggregatedLabel, Collection, CollectionItem, Project, Task, User
from app.errors import Conflict, UploadRejected, ValidationFailed
from app.services import answer_sets
from app.services.media import store as media
from app.services.ml.collection_aggregation import list_aggregation_runs
from app.services.ml.collections import (
    DEFAULT_VAL_FRACTION,
    check_collection_settings,
    claim_collection_name,
)
from app.services.projects import archive
from app.services.projects.pools import get_pool
from app.services.projects.projects import list_options
from app.services.text import control_problem

MULTILABEL = "multilabel"
MANIFESTS = ("manifest.csv", "manifest.json")


def is_multilabel(collection: Collection) -> bool:
    return collection.classification_type == MULTILABEL


def item_tags(item: CollectionItem) -> list[str]:
    """The tags of an item of either kind of collection."""
    if item.labels is not None:
        return list(item.labels)
    return [item.label] if item.label is not None else []


def tag_text(tags: Sequence[str]) -> str:
    """What ``CollectionItem.label`` holds for these tags (``[]``: known to have none)."""
    return json.dumps(sorted(set(tags)), ensure_ascii=False)


def set_item_tags(item: CollectionItem, tags: Sequence[str]) -> None:
    item.labels = sorted(set(tags))
    item.label = tag_text(item.labels)


def tag_counts(session: Session, collection: Collection) -> dict[str, dict[str, int]]:
    """``{tag: {"train": n, "val": m, "total": n + m}}`` over the collection's tags."""
    counts = {tag: {"train": 0, "val": 0, "total": 0} for tag in collection.classes}
    items = session.exec(
        select(CollectionItem).where(CollectionItem.collection_id == collection.id)
    ).all()
    for item in items:
        for tag in item_tags(item):
            entry = counts.setdefault(tag, {"train": 0, "val": 0, "total": 0})
            entry[item.split] = entry.get(item.split, 0) + 1
            entry["total"] += 1
    return counts


def random_split(count: int, *, val_fraction: float, seed: int) -> list[str]:
    """``"train"``/``"val"`` per position: ``val_fraction`` of the images, at random."""
    rng = np.random.default_rng(seed)
    n_val = min(int(round(count * val_fraction)), max(count - 2, 0))
    val = set(rng.permutation(count)[:n_val].tolist())
    return ["val" if i in val else "train" for i in range(count)]


def _add_tagged(
    session: Session,
    collection: Collection,
    rows: list[tuple[int, list[str], int | None, float | None]],
    classes: list[str],
) -> None:
    """Add ``(media id, tags, task id, confidence)`` rows, one per image (flushes)."""
    unique: dict[int, tuple[int, list[str], int | None, float | None]] = {}
    for row in rows:
        unique.setdefault(row[0], row)
    splits = random_split(len(unique), val_fraction=collection.val_fraction, seed=collection.seed)
    for (media_id, tags, task_id, confidence), split in zip(unique.values(), splits, strict=True):
        item = CollectionItem(
            collection_id=collection.id,
            media_id=media_id,
            split=split,
            source_task_id=task_id,
            confidence=confidence,
        )
        set_item_tags(item, tags)
        session.add(item)
    collection.classes = list(classes)
    collection.extra = {**collection.extra, "image_count": len(unique)}
    session.add(collection)
    session.flush()


def _check_tag_counts(rows, field: str) -> None:
    used = Counter(tag for _, tags, _, _ in rows for tag in tags)
    if len(used) < 2:
        raise ValidationFailed(
            "A multilabel collection needs images of at least two tags.",
            errors={field: "Fewer than two tags have images."},
        )


# --------------------------------------------------------------------- from an aggregation


def _multilabel_run(session: Session, *, requester: User, run_id: int):
    runs = {run.id: run for run in list_aggregation_runs(session, requester=requester)}
    run = runs.get(run_id)
    if run is None:
        from app.errors import NotFound

        raise NotFound("No such aggregation run.")
    pool = get_pool(session, requester=requester, pool_id=run.pool_id)
    project = session.get(Project, pool.project_id)
    if project.answer_type != answer_sets.MULTIPLE:
        raise ValidationFailed(
            "This run is of a one-answer project; make a multiclass collection from it.",
            errors={"run_id": "Not a several-answers project."},
        )
    return run, [o.value for o in list_options(session, project=project)]


def multilabel_rows(session: Session, run, options: list[str], min_confidence: float):
    """The run's images whose every option is decided at ``min_confidence``, with stats."""
    rows, stats = [], {"undecided": 0, "without_image": 0, "unanswered": 0}
    found = session.exec(
        select(AggregatedLabel, Task)
        .join(Task, Task.id == AggregatedLabel.task_id)
        .where(AggregatedLabel.run_id == run.id)
        .order_by(AggregatedLabel.task_id)
    ).all()
    for label, task in found:
        probabilities = label.option_confidence or {}
        if label.value is None or not probabilities:
            stats["unanswered"] += 1
        elif any(
            1.0 - min_confidence < float(probabilities.get(o, 0.0)) < min_confidence
            for o in options
        ):
            stats["undecided"] += 1
        elif task.media_id is None:
            stats["without_image"] += 1
        else:
            tags = [o for o in options if float(probabilities.get(o, 0.0)) >= 0.5]
            rows.append((task.media_id, tags, task.id, label.confidence))
    return rows, stats


def create_multilabel_collection_from_aggregation(
    session: Session,
    *,
    requester: User,
    run_id: int,
    name: str,
    min_confidence: float,
    description: str = "",
    val_fraction: float = DEFAULT_VAL_FRACTION,
    seed: int = 0,
) -> Collection:
    """A multilabel collection of a checkbox pool's aggregated sets (see the module)."""
    name, val_fraction, seed = check_collection_settings(name, val_fraction, seed)
    if not 0.5 <= min_confidence <= 1.0:
        raise ValidationFailed(
            "The per-option confidence must be between 0.5 and 1.",
            errors={"min_confidence": "Between 0.5 and 1."},
        )
    run, options = _multilabel_run(session, requester=requester, run_id=run_id)
    if run.status != "succeeded":
        raise Conflict("This aggregation run has not finished successfully.")
    rows, stats = multilabel_rows(session, run, options, min_confidence)
    _check_tag_counts(rows, "min_confidence")
    claim_collection_name(session, requester=requester, name=name)
    collection = Collection(
        owner_id=requester.id,
        name=name,
        description=description.strip()[:2000],
        source="aggregation",
        status="ready",
        aggregation_run_id=run.id,
        min_confidence=min_confidence,
        val_fraction=val_fraction,
        seed=seed,
        classification_type=MULTILABEL,
        extra=stats,
    )
    session.add(collection)
    session.flush()
    _add_tagged(session, collection, rows, options)
    session.commit()
    return collection


# --------------------------------------------------------------------- ZIP with a manifest


def _split_tags(raw: str) -> list[str]:
    return [tag.strip() for tag in raw.replace("|", ";").split(";") if tag.strip()]


def read_manifest(name: str, data: bytes) -> dict[str, list[str]]:
    """``{image path: tags}`` from a manifest's bytes; ``UploadRejected`` names the problem."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UploadRejected(f"{name} is not UTF-8 text.", file=name) from None
    found: dict[str, list[str]] = {}
    if name.endswith(".json"):
        try:
            parsed = json.loads(text)
        except ValueError as exc:
            raise UploadRejected(f"{name} is not valid JSON ({exc}).", file=name) from None
        pairs = (
            parsed.items()
            if isinstance(parsed, dict)
            else [
                (row.get("image"), row.get("tags")) if isinstance(row, dict) else (None, None)
                for row in (parsed if isinstance(parsed, list) else [None])
            ]
        )
        for position, (image, tags) in enumerate(pairs, start=1):
            if isinstance(tags, str):
                tags = _split_tags(tags)
            if not isinstance(image, str) or not isinstance(tags, list):
                raise UploadRejected(
                    f"{name}, entry {position}: give an image path and a list of tags.", file=name
                )
            found[image] = [str(t).strip() for t in tags if str(t).strip()]
    else:
        reader = csv.DictReader(io.StringIO(text))
        fields = [f.strip().lower() for f in reader.fieldnames or []]
        if "image" not in fields or "tags" not in fields:
            raise UploadRejected(f"{name} needs the columns image and tags.", file=name)
        for row in reader:
            row = {(k or "").strip().lower(): (v or "") for k, v in row.items()}
            found[row["image"].strip()] = _split_tags(row["tags"])
    if not found:
        raise UploadRejected(f"{name} lists no image.", file=name)
    for image, tags in found.items():
        for tag in tags:
            if problem := control_problem(tag, name=True):
                raise UploadRejected(f"{name}: tag {tag!r} of {image}: {problem}", file=name)
            if len(tag) > 60:
                raise UploadRejected(f"{name}: tag {tag!r} is longer than 60 characters.")
    return found


def create_multilabel_collection_from_zip(
    session: Session,
    *,
    requester: User,
    file: BinaryIO,
    name: str,
    description: str = "",
    val_fraction: float = DEFAULT_VAL_FRACTION,
    seed: int = 0,
) -> Collection:
    """A multilabel collection from a ZIP of images and a manifest naming each image's tags
    (see the module). Every image the manifest names must be in the archive; images it does
    not name are left out. Bad archives raise ``UploadRejected`` and leave nothing behind."""
    name, val_fraction, seed = check_collection_settings(name, val_fraction, seed)
    try:
        zip_file = zipfile.ZipFile(file)
    except zipfile.BadZipFile:
        raise UploadRejected("The file is not a ZIP archive.") from None
    infos = {info.filename: info for info in zip_file.infolist() if not info.is_dir()}
    manifest = next((path for path in infos if path.rsplit("/", 1)[-1].lower() in MANIFESTS), None)
    if manifest is None:
        raise UploadRejected(
            "A multilabel ZIP needs a manifest.csv (columns image, tags) or manifest.json "
            "naming each image's tags."
        )
    entry = archive.DatasetEntry(path=manifest, label="", info=infos[manifest])
    tags_of = read_manifest(manifest, archive.read_entry(zip_file, entry))
    prefix = manifest.rsplit("/", 1)[0] + "/" if "/" in manifest else ""
    missing = [p for p in tags_of if p not in infos and prefix + p not in infos]
    if missing:
        raise UploadRejected(
            f"The manifest names images the archive does not hold: {', '.join(missing[:5])}.",
            file=missing[0],
        )
    for path in tags_of:
        if path.startswith(("/", "\\")) or ".." in path.split("/"):
            raise UploadRejected(f"Unsafe path in the manifest: {path!r}.", file=path)
    images = []
    for path, tags in tags_of.items():
        info = infos[path] if path in infos else infos[prefix + path]
        data = archive.read_entry(zip_file, archive.DatasetEntry(path, "", info))
        media.inspect_image(data, name=path)
        images.append((path, data, tags))
    classes = sorted({tag for _, _, tags in images for tag in tags})
    rows_check = [(0, tags, None, None) for _, _, tags in images]
    _check_tag_counts(rows_check, "file")
    claim_collection_name(session, requester=requester, name=name)
    collection = Collection(
        owner_id=requester.id,
        name=name,
        description=description.strip()[:2000],
        source="zip",
        status="ready",
        val_fraction=val_fraction,
        seed=seed,
        classification_type=MULTILABEL,
    )
    session.add(collection)
    session.flush()
    rows = []
    for path, data, tags in images:
        stored = media.store_image(session, owner=requester, data=data, name=path)
        rows.append((stored.id, tags, None, None))
    _add_tagged(session, collection, rows, classes)
    session.commit()
    return collection


def has_manifest(file: BinaryIO) -> bool:
    """Whether an uploaded ZIP carries a manifest (a multilabel archive); rewinds the file."""
    try:
        with zipfile.ZipFile(file) as zip_file:
            names = [n.rsplit("/", 1)[-1].lower() for n in zip_file.namelist()]
    except zipfile.BadZipFile:
        return False
    finally:
        file.seek(0)
    return any(name in MANIFESTS for name in names)


def is_multilabel_run(session: Session, *, requester: User, run_id: int) -> bool:
    """Whether an aggregation run is of a several-answers (checkbox) project."""
    runs = {run.id: run for run in list_aggregation_runs(session, requester=requester)}
    run = runs.get(run_id)
    if run is None:
        return False
    pool = get_pool(session, requester=requester, pool_id=run.pool_id)
    return session.get(Project, pool.project_id).answer_type == answer_sets.MULTIPLE


def preview_multilabel_collection(
    session: Session, *, requester: User, run_id: int, min_confidence: float
) -> dict:
    """How many images per tag a multilabel collection of the run would hold."""
    run, options = _multilabel_run(session, requester=requester, run_id=run_id)
    rows, stats = multilabel_rows(session, run, options, min_confidence)
    per_tag = Counter(tag for _, tags, _, _ in rows for tag in tags)
    return {
        "run": run,
        "classes": {o: per_tag.get(o, 0) for o in options},
        "total": len(rows),
        "below_threshold": stats["undecided"],
        "without_image": stats["without_image"],
        "unanswered": stats["unanswered"],
        "control": 0,
        "multilabel": True,
    }


def get_collection_named(session: Session, *, requester: User, name: str) -> Collection | None:
    """The requester's collection of that name, if any."""
    return session.exec(
        select(Collection).where(Collection.owner_id == requester.id, Collection.name == name)
    ).first()
