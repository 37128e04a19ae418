"""Collections from ZIP archives and aggregation runs, with a stratified seeded split."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlmodel import select

from app.db.models import (
    Collection,
    CollectionItem,
    MediaFile,
    Task,
)
from app.errors import NotFound, UploadRejected, ValidationFailed
from app.services.media.store import store_image
from app.services.ml import collection_aggregation, collections
from tests.builders.models import (
    digit_pngs,
    digits_zip,
    make_aggregated_run,
    make_collection,
    zip_bytes,
)
from tests.builders.users import make_requester


def _items(session, collection):
    return session.exec(
        select(CollectionItem).where(CollectionItem.collection_id == collection.id)
    ).all()


def test_zip_import_creates_classes_items_and_a_stratified_split(session, requester):
    collection = make_collection(session, requester, per_class=10, val_fraction=0.2, seed=3)
    assert collection.status == "ready"
    assert collection.classes == ["0", "1", "2"]
    items = _items(session, collection)
    assert len(items) == 30
    per_class_val = Counter(item.label for item in items if item.split == "val")
    assert per_class_val == {"0": 2, "1": 2, "2": 2}
    counts = collections.class_counts(session, collection_ids=[collection.id])[collection.id]
    assert counts["0"] == {"train": 8, "val": 2, "total": 10}


def test_split_is_reproducible_for_a_seed_and_changes_with_it():
    labels = ["a"] * 10 + ["b"] * 5 + ["c"]
    first = collections.stratified_split(labels, val_fraction=0.3, seed=1)
    assert first == collections.stratified_split(labels, val_fraction=0.3, seed=1)
    assert first != collections.stratified_split(labels, val_fraction=0.3, seed=2)
    val = Counter(label for label, split in zip(labels, first, strict=True) if split == "val")
    assert val == {"a": 3, "b": 2}  # the single "c" stays in training


@pytest.mark.parametrize(
    ("files", "symlinks", "message"),
    [
        ({"D/a/../../evil.png": b"x", "D/b/1.png": b"x"}, (), "path traversal"),
        ({"D/a/link.png": b"/etc/passwd", "D/b/1.png": b"x"}, ("D/a/link.png",), "Symbolic"),
        ({"D/a/inner.zip": b"PK", "D/b/1.png": b"x"}, (), "Nested archives"),
        ({"D/a/notes.txt": b"hello", "D/b/1.png": b"x"}, (), "not an image"),
        ({"D/a/1.png": b"not really a png", "D/b/1.png": b"x"}, (), "not a readable image"),
    ],
)
def test_bad_archives_are_refused_and_leave_nothing(session, requester, files, symlinks, message):
    with pytest.raises(UploadRejected, match=message):
        collections.create_collection_from_zip(
            session, requester=requester, file=zip_bytes(files, symlinks=symlinks), name="Bad"
        )
    session.expire_all()
    assert session.exec(select(Collection)).all() == []
    assert session.exec(select(MediaFile)).all() == []


def test_a_bad_image_after_good_ones_stores_nothing(session, requester):
    png = digit_pngs()["0"]
    files = {f"D/a/{n}.png": png[n] for n in range(5)} | {"D/b/0.png": png[6], "D/b/1.png": b"x"}
    with pytest.raises(UploadRejected, match="D/b/1.png"):
        collections.create_collection_from_zip(
            session, requester=requester, file=zip_bytes(files), name="Half"
        )
    session.expire_all()
    assert session.exec(select(MediaFile)).all() == []


def test_single_class_and_empty_class_are_refused(session, requester):
    png = digit_pngs()["0"][0]
    with pytest.raises(UploadRejected, match="only one class"):
        collections.create_collection_from_zip(
            session, requester=requester, file=zip_bytes({"D/a/1.png": png}), name="One"
        )
    files = {"D/a/1.png": png, "D/b/2.png": digit_pngs()["1"][0], "D/empty/": b""}
    with pytest.raises(UploadRejected, match="'D/empty/' has no images"):
        collections.create_collection_from_zip(
            session, requester=requester, file=zip_bytes(files), name="Empty"
        )


def test_names_are_unique_per_owner(session, requester):
    make_collection(session, requester, name="Same", per_class=3)
    with pytest.raises(ValidationFailed) as info:
        make_collection(session, requester, name="Same", per_class=3)
    assert info.value.errors == {"name": "Already used."}
    other = make_requester(session)
    assert make_collection(session, other, name="Same", per_class=3).name == "Same"


def test_big_archives_import_as_a_job(session, requester, settings, monkeypatch):
    monkeypatch.setattr(settings, "upload_job_threshold", 10)
    collection = collections.create_collection_from_zip(
        session, requester=requester, file=digits_zip(per_class=5), name="Job"
    )
    session.expire_all()
    collection = session.get(Collection, collection.id)
    assert collection.job_id is not None
    assert collection.status == "ready"
    assert len(_items(session, collection)) == 15


def test_an_import_job_reports_progress_as_it_goes(session, requester, settings, monkeypatch):
    """More images than one progress step (50): the job's own reports must not wait for
    the job's own write lock (it used to fail with "database is locked" on SQLite)."""
    from app.db.models import Job

    monkeypatch.setattr(settings, "upload_job_threshold", 10)
    collection = collections.create_collection_from_zip(
        session, requester=requester, file=digits_zip(per_class=40), name="Many"
    )
    session.expire_all()
    collection = session.get(Collection, collection.id)
    job = session.get(Job, collection.job_id)
    assert job.status == "succeeded", job.error
    assert collection.status == "ready" and len(_items(session, collection)) == 120


def test_another_requesters_collection_is_not_found(session, requester):
    collection = make_collection(session, requester, per_class=3)
    with pytest.raises(NotFound):
        collections.get_collection(
            session, requester=make_requester(session), collection_id=collection.id
        )


def test_aggregation_preview_counts_images_per_class_above_the_threshold(session, requester):
    run, _ = make_aggregated_run(session, requester)
    preview = collection_aggregation.preview_aggregation_collection(
        session, requester=requester, run_id=run.id, min_confidence=0.75
    )
    assert preview["classes"] == {"0": 2, "1": 2}
    assert preview["below_threshold"] == 2


def test_collection_from_aggregation_keeps_confident_labels_and_control_tasks(session, requester):
    run, pool = make_aggregated_run(session, requester)
    controls = session.exec(select(Task).where(Task.kind == "control")).all()
    pngs = digit_pngs()
    for task in controls:
        data = pngs[task.known_answer][20]
        task.media_id = store_image(session, owner=requester, data=data, name="c").id
        session.add(task)
    session.commit()
    collection = collection_aggregation.create_collection_from_aggregation(
        session,
        requester=requester,
        run_id=run.id,
        name="From crowd",
        min_confidence=0.75,
        include_control=True,
    )
    items = _items(session, collection)
    assert Counter(item.label for item in items) == {"0": 3, "1": 3}
    assert all(item.confidence >= 0.75 for item in items)
    assert collection.source == "aggregation" and collection.min_confidence == 0.75


def test_a_threshold_that_leaves_one_class_is_refused(session, requester):
    run, _ = make_aggregated_run(session, requester)
    with pytest.raises(ValidationFailed) as info:
        collection_aggregation.create_collection_from_aggregation(
            session, requester=requester, run_id=run.id, name="Too strict", min_confidence=0.97
        )
    assert "min_confidence" in info.value.errors
