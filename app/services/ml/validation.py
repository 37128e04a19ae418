"""Per-image predictions of a trained model on its validation images.

Training writes them beside the checkpoint (``val_predictions.json``: the collection item
id and the class probabilities of every validation image). A model trained before that file
existed gets it computed on first use, from the collection's current validation split.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from sqlmodel import Session, select

from app.db.models import CollectionItem, MediaFile, ModelStatus, TrainedModel
from app.errors import Conflict
from app.services.media import store as media

VAL_PREDICTIONS_FILE = "val_predictions.json"


def write_validation_predictions(
    checkpoint_dir: str | Path, item_ids: list[int], probs: np.ndarray
) -> Path:
    """Keep each validation image's probabilities (written atomically)."""
    from model.checkpoint import atomic_write_bytes

    rows = [
        {"item_id": int(item_id), "probabilities": [round(float(p), 6) for p in row]}
        for item_id, row in zip(item_ids, probs, strict=True)
    ]
    path = Path(checkpoint_dir) / VAL_PREDICTIONS_FILE
    atomic_write_bytes(path, json.dumps(rows).encode("utf-8"))
    return path


def validation_predictions(session: Session, model: TrainedModel) -> dict[int, list[float]]:
    """``{collection item id: probabilities in model.classes order}`` of a trained model."""
    if model.status != ModelStatus.COMPLETED or not model.checkpoint_dir:
        raise Conflict("The model has not finished training.")
    path = Path(model.checkpoint_dir) / VAL_PREDICTIONS_FILE
    if not path.is_file():
        _compute(session, model)
    rows = json.loads(path.read_text(encoding="utf-8"))
    return {int(row["item_id"]): list(row["probabilities"]) for row in rows}


def _compute(session: Session, model: TrainedModel) -> None:
    from model.predict import get_predictor

    rows = session.exec(
        select(CollectionItem, MediaFile)
        .join(MediaFile, MediaFile.id == CollectionItem.media_id)
        .where(
            CollectionItem.collection_id == model.collection_id,
            CollectionItem.split == "val",
            CollectionItem.label.in_(list(model.classes)),
        )
        .order_by(CollectionItem.id)
    ).all()
    predictor = get_predictor(model.checkpoint_dir, device="cpu")
    images = [media.local_path(m) or media.read_media(m) for _, m in rows]
    probs = predictor.predict_proba(images) if images else np.zeros((0, len(model.classes)))
    write_validation_predictions(model.checkpoint_dir, [item.id for item, _ in rows], probs)
