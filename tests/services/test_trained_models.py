"""Training jobs, iterations, publishing with prediction keys, cancel, batch prediction."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.db.models import Job, ModelStatus, TrainedModel
from app.errors import Conflict, NotFound, UploadRejected, ValidationFailed
from app.security import hash_token
from app.services.ml import inference, trained_models
from tests.builders.models import (
    TINY_SETTINGS,
    digit_pngs,
    make_collection,
    make_trained_model,
    quiet_torch_threads,
)
from tests.builders.users import make_requester


@pytest.fixture(autouse=True)
def _one_thread():
    quiet_torch_threads()


def test_training_job_writes_checkpoint_metrics_and_figures(session, requester, settings):
    collection = make_collection(session, requester, per_class=24, val_fraction=0.25)
    model = trained_models.start_training(
        session,
        requester=requester,
        collection_id=collection.id,
        settings={**TINY_SETTINGS, "epochs": 3, "pretrained": True},
    )
    session.expire_all()
    model = session.get(TrainedModel, model.id)
    job = session.get(Job, model.job_id)
    assert job.status == "succeeded", job.message
    assert model.status == ModelStatus.COMPLETED
    assert model.iteration == 1
    assert model.metrics["accuracy"] > 0.6  # chance is 1/3
    assert model.metrics["num_samples"] == 18
    assert {row["class"] for row in model.metrics["per_class"]} == {"0", "1", "2"}
    assert len(model.metrics["threshold_curve"]) == 21
    assert [h["epoch"] for h in model.metrics["history"]] == [1, 2, 3]
    assert "not available offline; training from scratch" in model.message
    assert model.pretrained_used is False
    directory = Path(model.checkpoint_dir)
    assert directory == settings.models_dir / str(model.id)
    assert (directory / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
    assert (directory / "training_curves.png").is_file()
    label, probability = inference.predict_bytes(
        model, data=digit_pngs()["2"][30], name="two.png", top_k=1
    )[0]
    assert label in model.classes and 0 < probability <= 1

    again = trained_models.start_training(
        session, requester=requester, collection_id=collection.id, settings=TINY_SETTINGS
    )
    assert again.iteration == 2


def test_training_settings_are_validated_by_field(session, requester):
    collection = make_collection(session, requester, per_class=3)
    with pytest.raises(ValidationFailed) as info:
        trained_models.start_training(
            session,
            requester=requester,
            collection_id=collection.id,
            settings={**TINY_SETTINGS, "arch": "resnet_nonexistent"},
        )
    assert "unknown architecture" in info.value.errors["arch"]
    with pytest.raises(ValidationFailed) as info:
        trained_models.start_training(
            session,
            requester=requester,
            collection_id=collection.id,
            settings={**TINY_SETTINGS, "epochs": 0},
        )
    assert "epochs" in info.value.errors
    assert session.exec(TrainedModel.__table__.select()).all() == []


def test_a_failing_training_marks_the_model_failed_with_the_message(session, requester):
    collection = make_collection(session, requester, per_class=4)
    from app.db.models import CollectionItem, MediaFile
    from app.services.media.store import local_path

    item = session.exec(
        CollectionItem.__table__.select().where(CollectionItem.collection_id == collection.id)
    ).first()
    Path(local_path(session.get(MediaFile, item.media_id))).write_bytes(b"broken")
    model = trained_models.start_training(
        session, requester=requester, collection_id=collection.id, settings=TINY_SETTINGS
    )
    session.expire_all()
    model = session.get(TrainedModel, model.id)
    assert model.status == ModelStatus.FAILED
    assert "not a readable image" in model.message
    assert not (trained_models.models_dir_for(model)).exists()


def test_cancel_stops_a_run_and_marks_it_cancelled(session, requester, monkeypatch):
    collection = make_collection(session, requester, per_class=4)
    from app.db.engine import session_scope
    from workers.jobs import training

    def cancel_on_first_check(self):
        with session_scope() as s:
            job = s.get(Job, self.job_id)
            job.cancel_requested = True
            s.add(job)
            s.commit()
        return True

    monkeypatch.setattr(training._CancelWatch, "__call__", cancel_on_first_check)
    model = trained_models.start_training(
        session, requester=requester, collection_id=collection.id, settings=TINY_SETTINGS
    )
    session.expire_all()
    model = session.get(TrainedModel, model.id)
    assert model.status == ModelStatus.CANCELLED
    assert "Cancelled by its owner" in model.message
    assert session.get(Job, model.job_id).status == "cancelled"
    assert model.checkpoint_dir is None


def test_publish_gives_a_key_shown_once_and_names_are_unique(session, requester):
    first = make_trained_model(session, requester)
    second = make_trained_model(session, requester, collection=None, iteration=2)
    model, key = trained_models.publish_model(
        session, requester=requester, model_id=first.id, name="digits"
    )
    assert key.startswith("pk_") and model.prediction_key_hash == hash_token(key)
    assert key not in str(model.model_dump())
    assert trained_models.model_for_prediction_key(session, model_id=first.id, key=key).id == (
        first.id
    )
    assert trained_models.model_for_prediction_key(session, model_id=first.id, key="pk_x") is None
    with pytest.raises(ValidationFailed) as info:
        trained_models.publish_model(
            session, requester=requester, model_id=second.id, name="digits"
        )
    assert info.value.errors == {"name": "Already used by another model."}
    trained_models.unpublish_model(session, requester=requester, model_id=first.id)
    assert trained_models.model_for_prediction_key(session, model_id=first.id, key=key) is None


def test_only_completed_models_publish_and_other_owners_get_not_found(session, requester):
    model = make_trained_model(session, requester, status=ModelStatus.FAILED)
    with pytest.raises(Conflict):
        trained_models.publish_model(session, requester=requester, model_id=model.id, name="x")
    with pytest.raises(NotFound):
        trained_models.get_model(session, requester=make_requester(session), model_id=model.id)


def test_evaluation_reads_the_stored_metrics(session, requester):
    figures = trained_models.evaluation(make_trained_model(session, requester))
    assert 0.3 < figures["accuracy"] <= 1.0  # chance is 0.1
    assert len(figures["per_class"]) == 10 and figures["has_figures"]
    low, high = figures["threshold_curve"][0], figures["threshold_curve"][-1]
    assert low["recall"] >= high["recall"] and low["coverage"] == 1.0


def test_bad_image_bytes_get_a_clear_error(session, requester):
    model = make_trained_model(session, requester)
    with pytest.raises(UploadRejected, match="scan.png: not a readable image"):
        inference.predict_bytes(model, data=b"GIF89a-not-really", name="scan.png")


def test_batch_prediction_of_a_collection_writes_a_toloka_tsv(session, requester):
    collection = make_collection(session, requester, name="To predict", per_class=3)
    model = make_trained_model(session, requester, collection=collection)
    job = inference.start_batch_prediction(
        session, requester=requester, model_id=model.id, collection_id=collection.id
    )
    assert job.status == "succeeded", job.message
    path = inference.get_batch_tsv(session, requester=requester, job_id=job.id)
    lines = path.read_text().splitlines()
    assert lines[0] == "INPUT:image\tOUTPUT:result\tCONFIDENCE:result"
    assert len(lines) == 10
    name, label, confidence = lines[1].split("\t")
    assert name.endswith(".png") and label in model.classes and 0 < float(confidence) <= 1
    with pytest.raises(NotFound):
        inference.get_batch_tsv(session, requester=make_requester(session), job_id=job.id)


def test_no_transaction_is_held_while_the_settings_load_timm(session, requester, monkeypatch):
    """The first training request of a process imports timm and torch (a minute on a busy
    machine): no pooled connection, nor SQLite's write lock, is held meanwhile."""
    from app.db.engine import get_engine, new_session

    collection = make_collection(session, requester, per_class=4)
    session.close()
    engine = get_engine()
    request_session = new_session()  # as a request's: its user was read, a transaction is open
    user = request_session.get(type(requester), requester.id)
    assert request_session.in_transaction()
    seen = []
    real = trained_models.build_config

    def checking(settings):
        seen.append((request_session.in_transaction(), engine.pool.checkedout()))
        return real(settings)

    monkeypatch.setattr(trained_models, "build_config", checking)
    model = trained_models.start_training(
        request_session,
        requester=user,
        collection_id=collection.id,
        settings=dict(TINY_SETTINGS),
        dispatch=False,
    )
    request_session.close()
    assert seen == [(False, 0)]
    assert model.status == ModelStatus.QUEUED
