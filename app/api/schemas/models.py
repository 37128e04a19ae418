"""JSON shapes of collections, trained models and predictions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

METRIC_KEYS = (
    "accuracy",
    "macro_precision",
    "macro_recall",
    "macro_f1",
    "mean_average_precision",
    "num_samples",
    "per_class",
    "confusion_matrix",
    "history",
)


class CollectionPublic(BaseModel):
    id: int
    name: str
    description: str
    source: str
    status: str
    classes: list[str]
    classification_type: str = "multiclass"  # "multilabel": any number of tags per image
    class_counts: dict[str, dict[str, int]]
    val_fraction: float
    seed: int
    aggregation_run_id: int | None
    min_confidence: float | None
    job_id: int | None
    created_at: datetime


class TrainRequest(BaseModel):
    """Start training: the collection plus any ``TrainConfig`` fields (defaults otherwise)."""

    model_config = ConfigDict(extra="allow")

    collection_id: int
    arch: str = "resnet18"


class ModelPublic(BaseModel):
    id: int
    collection_id: int
    iteration: int
    name: str
    arch: str
    status: str
    classes: list[str]
    config: dict[str, Any]
    metrics: dict[str, Any]
    message: str
    pretrained_used: bool
    published_name: str | None
    published_at: datetime | None
    job_id: int | None
    progress: float | None = None
    progress_message: str | None = None
    created_at: datetime
    finished_at: datetime | None


class PublishRequest(BaseModel):
    name: str = Field(min_length=1, max_length=200)


class PublishResult(BaseModel):
    model: ModelPublic
    prediction_key: str


class Prediction(BaseModel):
    label: str
    probability: float


class PredictionResult(BaseModel):
    model_id: int
    predictions: list[Prediction]
    # multilabel models: every tag with its own probability is in ``predictions``; ``tags``
    # are those at or above ``threshold``
    multilabel: bool = False
    threshold: float | None = None
    tags: list[str] | None = None


class ExportRequest(BaseModel):
    format: str = Field("onnx", description="onnx or torchscript")


class ExportPublic(BaseModel):
    model_id: int
    format: str
    status: str = Field(description="exporting, done or failed")
    job_id: int
    message: str = ""
    download_url: str | None = None
