"""Trained models: each training run is an iteration of a collection's model."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Column, ForeignKey, Integer, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.db.types import UTCDateTime, utcnow


class ModelStatus(StrEnum):
    QUEUED = "queued"
    TRAINING = "training"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class TrainedModel(SQLModel, table=True):
    """A checkpoint directory with its config and metrics; publishable under a name."""

    __tablename__ = "trained_model"
    __table_args__ = (
        UniqueConstraint("owner_id", "published_name", name="uq_model_published_name"),
    )

    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("user_account.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    collection_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("collection.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    iteration: int = Field(default=1)
    name: str = Field(default="", max_length=200)
    arch: str = Field(max_length=100)
    status: str = Field(default=ModelStatus.QUEUED, sa_column=Column(String(16), nullable=False))
    config: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    metrics: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    classes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    checkpoint_dir: str | None = Field(default=None, max_length=1000)
    message: str = Field(default="", max_length=2000)
    pretrained_used: bool = Field(default=False)
    published_name: str | None = Field(default=None, max_length=200)
    published_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    prediction_key_hash: str | None = Field(default=None, max_length=64)
    job_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("job.id", ondelete="SET NULL"), nullable=True),
    )
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
