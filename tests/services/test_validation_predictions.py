"""Per-image validation predictions: written by training, computed once for older models."""

from __future__ import annotations

import shutil

import pytest
from sqlmodel import select

from app.db.models import CollectionItem
from app.errors import Conflict
from app.services.ml.validation import VAL_PREDICTIONS_FILE, validation_predictions
from tests.builders.models import make_collection, make_trained_model, quiet_torch_threads


def test_a_model_without_the_file_gets_it_from_its_validation_split(session, requester, tmp_path):
    quiet_torch_threads()
    collection = make_collection(session, requester)
    model = make_trained_model(session, requester, collection)
    own = tmp_path / "checkpoint"
    shutil.copytree(model.checkpoint_dir, own)  # the shared checkpoint stays untouched
    (own / VAL_PREDICTIONS_FILE).unlink(missing_ok=True)
    model.checkpoint_dir = str(own)
    session.add(model)
    session.commit()

    predictions = validation_predictions(session, model)
    val_ids = session.exec(
        select(CollectionItem.id).where(
            CollectionItem.collection_id == collection.id, CollectionItem.split == "val"
        )
    ).all()
    assert sorted(predictions) == sorted(val_ids) and val_ids
    for probs in predictions.values():
        assert len(probs) == len(model.classes)
        assert sum(probs) == pytest.approx(1.0, abs=1e-4)
    assert (own / VAL_PREDICTIONS_FILE).is_file()
    assert validation_predictions(session, model) == predictions  # read back, not recomputed


def test_an_unfinished_model_has_no_validation_predictions(session, requester):
    model = make_trained_model(session, requester, status="training", checkpoint_dir=None)
    with pytest.raises(Conflict):
        validation_predictions(session, model)
