"""Payloads of the aggregation API (Toloka's ``aggregate-by-pool`` and Crowdlab's own)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class AggregationField(BaseModel):
    """One output field to aggregate."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(min_length=1, max_length=100)


class AggregateByPool(BaseModel):
    """Body of ``POST /aggregated-solutions/aggregate-by-pool`` (as toloka-kit sends it)."""

    model_config = ConfigDict(extra="allow")

    type: str = "DAWID_SKENE"
    pool_id: str | int
    fields: list[AggregationField] = Field(
        default_factory=lambda: [AggregationField(name="result")]
    )
    answer_weight_skill_id: str | None = None


class AggregateByTask(BaseModel):
    """Body of ``POST /aggregated-solutions/aggregate-by-task`` (as toloka-kit sends it)."""

    model_config = ConfigDict(extra="forbid")

    type: str = "WEIGHTED_DYNAMIC_OVERLAP"
    pool_id: str | int
    task_id: str | int
    answer_weight_skill_id: str | int
    fields: list[AggregationField] = Field(
        default_factory=lambda: [AggregationField(name="result")]
    )


class AggregationCreate(BaseModel):
    """``POST /pools/{id}/aggregations``: Crowdlab's own way to start a run."""

    method: str = "auto"
    use_known: bool = True


class AggregationRunPublic(BaseModel):
    """A run as JSON."""

    id: str
    pool_id: str
    method: str
    status: str
    operation_id: str | None
    use_known: bool
    task_count: int
    unanswered_count: int
    answer_count: int
    mean_confidence: float | None
    error: str | None
    created: str | None
    started: str | None
    finished: str | None
    duration_seconds: float | None
    method_used: str | None = None
    """The method that produced the labels (``auto``'s choice; None until the run succeeded)."""
    confidence_calibrated: bool | None = None
    """True when the confidences were calibrated on control tasks (``auto`` with enough)."""
    heldout_ece: float | None = None
    """Cross-fitted expected calibration error on the control tasks, when calibrated."""
