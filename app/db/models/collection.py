"""Collections: labeled image sets that train models."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.db.types import UTCDateTime, utcnow


class Collection(SQLModel, table=True):
    """A named set of labeled images with a stored, seeded train/validation split."""

    __table_args__ = (UniqueConstraint("owner_id", "name", name="uq_collection_owner_name"),)

    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("user_account.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    name: str = Field(max_length=200)
    description: str = Field(default="", max_length=2000)
    source: str = Field(default="zip", sa_column=Column(String(16), nullable=False))
    status: str = Field(default="ready", sa_column=Column(String(16), nullable=False))
    aggregation_run_id: int | None = Field(
        default=None,
        sa_column=Column(
            Integer, ForeignKey("aggregation_run.id", ondelete="SET NULL"), nullable=True
        ),
    )
    min_confidence: float | None = Field(default=None)
    classes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    val_fraction: float = Field(default=0.2)
    seed: int = Field(default=0)
    job_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("job.id", ondelete="SET NULL"), nullable=True),
    )
    extra: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # "multiclass": one class per image (``CollectionItem.label``); "multilabel": any number
    # of tags per image (``CollectionItem.labels``)
    classification_type: str = Field(
        default="multiclass",
        sa_column=Column(String(16), nullable=False, server_default="multiclass"),
    )
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class CollectionItem(SQLModel, table=True):
    """One image of a collection with its class and split (``label`` None = untagged)."""

    __tablename__ = "collection_item"
    __table_args__ = (Index("ix_collection_item_collection_label", "collection_id", "label"),)

    id: int | None = Field(default=None, primary_key=True)
    collection_id: int = Field(
        sa_column=Column(Integer, ForeignKey("collection.id", ondelete="CASCADE"), nullable=False)
    )
    media_id: int = Field(
        sa_column=Column(Integer, ForeignKey("media_file.id", ondelete="CASCADE"), nullable=False)
    )
    label: str | None = Field(default=None, max_length=200)
    split: str = Field(default="train", sa_column=Column(String(8), nullable=False))
    source_task_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("task.id", ondelete="SET NULL"), nullable=True),
    )
    confidence: float | None = Field(default=None)
    # a multilabel collection's tags of the image (``label`` is then None)
    labels: list[str] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
