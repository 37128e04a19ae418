"""Aggregation runs, their per-task labels and per-worker quality."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, ForeignKey, Index, Integer, PrimaryKeyConstraint, String
from sqlmodel import Field, SQLModel

from app.db.types import UTCDateTime, utcnow


class AggregationRun(SQLModel, table=True):
    """One aggregation of a pool's answers with one method."""

    __tablename__ = "aggregation_run"

    id: int | None = Field(default=None, primary_key=True)
    pool_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("pool.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    owner_id: int = Field(
        sa_column=Column(Integer, ForeignKey("user_account.id", ondelete="CASCADE"), nullable=False)
    )
    method: str = Field(sa_column=Column(String(32), nullable=False))
    params: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = Field(default="queued", sa_column=Column(String(16), nullable=False))
    job_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("job.id", ondelete="SET NULL"), nullable=True),
    )
    task_count: int = Field(default=0)
    unanswered_count: int = Field(default=0)
    answer_count: int = Field(default=0)
    mean_confidence: float | None = Field(default=None)
    error: str | None = Field(default=None)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class AggregatedLabel(SQLModel, table=True):
    """The aggregated answer of one task; ``value`` is None when nobody answered.

    Keyed by ``(run_id, task_id)``, without foreign keys: a big run writes a million rows,
    and a serial id, a second unique index and per-row checks against ``aggregation_run``
    and ``task`` made PostgreSQL spend most of the job on them. A trigger of migration
    ``0015_labels`` deletes a run's labels with the run (the job locks its run while it
    writes them); tasks are never deleted one by one, and a pool's deletion cascades to its
    runs and so to their labels.
    """

    __tablename__ = "aggregated_label"
    __table_args__ = (PrimaryKeyConstraint("run_id", "task_id", name="pk_aggregated_label"),)

    run_id: int = Field(sa_column=Column(Integer, nullable=False))
    task_id: int = Field(sa_column=Column(Integer, nullable=False))
    value: str | None = Field(default=None, max_length=200)
    confidence: float | None = Field(default=None)
    answer_count: int = Field(default=0)
    # several answers: each option's probability of being in the set ({value: p})
    option_confidence: dict | None = Field(default=None, sa_column=Column(JSON, nullable=True))


class WorkerQuality(SQLModel, table=True):
    """A labeler's estimated accuracy and confusion matrix from one run."""

    __tablename__ = "worker_quality"
    __table_args__ = (Index("ix_worker_quality_run", "run_id"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("aggregation_run.id", ondelete="CASCADE"), nullable=False
        )
    )
    labeler_id: int = Field(
        sa_column=Column(Integer, ForeignKey("user_account.id", ondelete="CASCADE"), nullable=False)
    )
    accuracy: float | None = Field(default=None)
    answer_count: int = Field(default=0)
    confusion: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
