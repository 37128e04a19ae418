"""A pool's dynamic-overlap settings and model: checked before a pool is saved."""

from __future__ import annotations

from sqlmodel import Session

from app.db.models import Collection, User
from app.db.models.ml import ModelStatus, TrainedModel
from app.db.models.quality import Skill
from app.errors import ValidationFailed

MAX_RETRAIN_EVERY = 1_000_000


def validate_retraining(values: dict, errors: dict[str, str]) -> None:
    """Retraining every N confident tasks: N in 1..1,000,000, and dynamic overlap on (the
    confidence that says which tasks are confident is dynamic overlap's)."""
    every = values.get("model_retrain_every")
    if every is None:
        return
    if not 1 <= int(every) <= MAX_RETRAIN_EVERY:
        errors["model_retrain_every"] = f"Retrain every 1 to {MAX_RETRAIN_EVERY:,} confident tasks."
    elif values.get("max_overlap") is None:
        errors["model_retrain_every"] = (
            "Retraining learns from the tasks dynamic overlap made confident: set a maximum "
            "overlap and a minimum confidence first."
        )


def validate_dynamic(values: dict, errors: dict[str, str], *, training: bool, limit: int) -> None:
    """Dynamic overlap: a maximum overlap at least the overlap, a confidence in 0..1."""
    validate_retraining(values, errors)
    if values.get("max_overlap") is None:  # off (or not being changed)
        if values.get("min_confidence") is not None:
            errors["max_overlap"] = "Dynamic overlap needs a maximum overlap."
        return
    max_overlap = int(values["max_overlap"])
    overlap = int(values.get("overlap") or 1)
    if training:
        errors["max_overlap"] = "Training pools have no overlap to grow: dynamic overlap is off."
    elif not 1 <= max_overlap <= limit:
        errors["max_overlap"] = f"The maximum overlap is between 1 and {limit}."
    elif max_overlap < overlap:
        errors["max_overlap"] = (
            f"The maximum overlap ({max_overlap}) is at least the overlap ({overlap}), which is "
            "where every task starts."
        )
    confidence = values.get("min_confidence")
    if confidence is None:
        errors["min_confidence"] = "Dynamic overlap needs a minimum confidence (0 to 1)."
    elif not 0 <= float(confidence) <= 1:
        errors["min_confidence"] = "The minimum confidence is between 0 and 1 (e.g. 0.8)."
    else:
        values["min_confidence"] = float(confidence)


def check_references(session: Session, *, requester: User, values: dict) -> None:
    """The answer-weight skill, the model and the base collection: the requester's own."""
    errors: dict[str, str] = {}
    skill_id = values.get("answer_weight_skill_id")
    if skill_id is not None:
        skill = session.get(Skill, int(skill_id))
        if skill is None or skill.owner_id != requester.id:
            errors["answer_weight_skill_id"] = "No such skill among yours."
    model_id = values.get("model_id")
    if model_id is not None:
        model = session.get(TrainedModel, int(model_id))
        if model is None or model.owner_id != requester.id:
            errors["model_id"] = "No such model among yours."
        elif model.published_at is None or model.status != ModelStatus.COMPLETED:
            errors["model_id"] = "Publish the model before a pool uses it."
    collection_id = values.get("model_retrain_collection_id")
    if collection_id is not None:
        collection = session.get(Collection, int(collection_id))
        if collection is None or collection.owner_id != requester.id:
            errors["model_retrain_collection_id"] = "No such collection among yours."
        elif collection.status != "ready":
            errors["model_retrain_collection_id"] = "This collection is not ready yet."
    if errors:
        raise ValidationFailed("Please fix the highlighted fields.", errors=errors)
