"""Toloka pool fields beyond the basics: dynamic overlap (honoured), the pool's model
(Crowdlab's ``model_id``), and the Toloka fields Crowdlab refuses rather than drop."""

from __future__ import annotations

from typing import Any

from app.api.schemas.common import public_id
from app.api.schemas.pools import PoolBody
from app.db.models import Pool
from app.errors import ValidationFailed

OUTPUT_FIELD = "result"  # a project's one output field


def _refuse(field: str, message: str) -> None:
    raise ValidationFailed(message, errors={field: "NOT_SUPPORTED"})


def refuse_unsupported(body: PoolBody) -> None:
    """Toloka pool settings Crowdlab does not act on: refused, never silently dropped."""
    extra = body.model_extra or {}
    if extra.get("dynamic_pricing_config"):
        _refuse(
            "dynamic_pricing_config",
            "Crowdlab does not support dynamic pricing: every suite of a pool has one price "
            "(reward_per_assignment).",
        )
    if extra.get("training_config"):
        _refuse(
            "training_config",
            "Crowdlab does not support training_config; require a training with "
            "quality_control.training_requirement.",
        )
    if extra.get("auto_close_after_complete_delay_seconds"):
        _refuse(
            "auto_close_after_complete_delay_seconds",
            "Crowdlab closes a pool the moment its last task is done (dynamic overlap decides "
            "extra answers inside each submit, so no delay is needed); send 0 or leave it out.",
        )
    if extra.get("public_instructions"):
        _refuse(
            "public_instructions",
            "Crowdlab shows the project's instructions; pools have none of their own. Set "
            "public_instructions on the project.",
        )
    issuing = extra.get("assignments_issuing_config")
    if isinstance(issuing, dict) and issuing.get("issue_task_suites_in_creation_order") is False:
        _refuse(
            "assignments_issuing_config.issue_task_suites_in_creation_order",
            "Crowdlab always issues composed task suites in creation order.",
        )


def dynamic_overlap_settings(body: PoolBody) -> dict[str, Any]:
    """``dynamic_overlap_config`` → pool settings; ``null`` turns dynamic overlap off."""
    extra = body.model_extra or {}
    if "dynamic_overlap_config" not in extra:
        return {}
    config = extra["dynamic_overlap_config"]
    if config is None:
        return {"max_overlap": None, "min_confidence": None, "answer_weight_skill_id": None}
    if not isinstance(config, dict):
        raise ValidationFailed(
            "dynamic_overlap_config is an object.",
            errors={"dynamic_overlap_config": "INVALID_VALUE"},
        )
    kind = str(config.get("type") or "BASIC").upper()
    if kind != "BASIC":
        _refuse(
            "dynamic_overlap_config.type",
            f"Dynamic overlap type {kind} is not supported; use BASIC.",
        )
    for index, item in enumerate(config.get("fields") or []):
        name = item.get("name") if isinstance(item, dict) else item
        if name != OUTPUT_FIELD:
            _refuse(
                f"dynamic_overlap_config.fields.{index}.name",
                f"Output field {name!r} does not exist; a Crowdlab project has one output "
                f"field, {OUTPUT_FIELD!r}.",
            )
    out: dict[str, Any] = {}
    for key, kind_of in (("max_overlap", int), ("min_confidence", float)):
        value = config.get(key)
        if value is None:
            raise ValidationFailed(
                f"dynamic_overlap_config.{key} is required.",
                errors={f"dynamic_overlap_config.{key}": "REQUIRED"},
            )
        try:
            out[key] = kind_of(value)
        except (TypeError, ValueError):
            raise ValidationFailed(
                f"dynamic_overlap_config.{key} is a number.",
                errors={f"dynamic_overlap_config.{key}": "INVALID_VALUE"},
            ) from None
    skill = config.get("answer_weight_skill_id")
    if skill in (None, ""):
        out["answer_weight_skill_id"] = None
    elif not str(skill).strip().isdigit():
        raise ValidationFailed(
            "No such skill.", errors={"dynamic_overlap_config.answer_weight_skill_id": "NOT_FOUND"}
        )
    else:
        out["answer_weight_skill_id"] = int(str(skill).strip())
    return out


_MODEL_FIELDS = {  # Crowdlab's own pool fields: the model and its retraining
    "model_id": ("No such model.", "NOT_FOUND"),
    "model_retrain_collection_id": ("No such collection.", "NOT_FOUND"),
    "model_retrain_every": ("A whole number of confident tasks.", "INVALID"),
}


def model_settings(body: PoolBody) -> dict[str, Any]:
    """Crowdlab's ``model_id`` (a published model that answers each task first),
    ``model_retrain_every`` and ``model_retrain_collection_id`` (its retraining)."""
    extra = body.model_extra or {}
    out: dict[str, Any] = {}
    for key, (message, code) in _MODEL_FIELDS.items():
        if key not in extra:
            continue
        value = extra[key]
        if value in (None, ""):
            out[key] = None
        elif not str(value).strip().isdigit():
            raise ValidationFailed(message, errors={key: code})
        else:
            out[key] = int(str(value).strip())
    return out


def model_json(pool: Pool) -> dict[str, Any]:
    """The pool's model fields as the API returns them (absent when unset)."""
    out: dict[str, Any] = {}
    if pool.model_id is not None:
        out["model_id"] = public_id(pool.model_id)
    if pool.model_retrain_every is not None:
        out["model_retrain_every"] = pool.model_retrain_every
    if pool.model_retrain_collection_id is not None:
        out["model_retrain_collection_id"] = public_id(pool.model_retrain_collection_id)
    return out


def dynamic_overlap_json(pool: Pool) -> dict[str, Any] | None:
    """The pool's ``dynamic_overlap_config`` as Toloka returns it (None when off)."""
    if pool.max_overlap is None:
        return None
    out: dict[str, Any] = {
        "type": "BASIC",
        "max_overlap": pool.max_overlap,
        "min_confidence": pool.min_confidence,
        "fields": [{"name": OUTPUT_FIELD}],
    }
    if pool.answer_weight_skill_id is not None:
        out["answer_weight_skill_id"] = public_id(pool.answer_weight_skill_id)
    return out


def savings_json(savings) -> dict[str, Any]:
    """What dynamic overlap saved (``OverlapSavings``), money in dollars."""
    return {
        "max_overlap": savings.max_overlap,
        "tasks_done": savings.done_tasks,
        "answers_bought": savings.done_answers,
        "answers_at_fixed_overlap": savings.fixed_answers,
        "saved": round(savings.saved_cents / 100, 2),
        "answers_per_task": {label.split()[0]: n for label, n in savings.histogram},
        "model_control_accuracy": savings.model_accuracy,
    }
