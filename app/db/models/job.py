"""Background jobs with the progress the pages poll."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Column, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.db.types import UTCDateTime, utcnow


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Job(SQLModel, table=True):
    """One unit of long work (upload, aggregation, training, batch inference)."""

    __table_args__ = (
        Index("ix_job_owner_kind", "owner_id", "kind"),
        UniqueConstraint("external_id", name="uq_job_external_id"),
        Index("ix_job_status_heartbeat", "status", "heartbeat_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    owner_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("user_account.id", ondelete="CASCADE"), nullable=True),
    )
    kind: str = Field(sa_column=Column(String(32), nullable=False))
    # A client-chosen id (Toloka's operation_id, a UUID), unique when given.
    external_id: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    status: str = Field(default=JobStatus.QUEUED, sa_column=Column(String(16), nullable=False))
    progress: float = Field(default=0.0)
    message: str = Field(default="", max_length=1000)
    error: str | None = Field(default=None)
    payload: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    result: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    cancel_requested: bool = Field(default=False)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # The lease: a running job renews ``heartbeat_at``; the worker holding ``lease_token``
    # is the only one whose progress and result are written. A job whose heartbeat stops
    # is retried (``attempts < max_attempts``) or failed by the periodic maintenance.
    heartbeat_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    lease_token: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    worker: str | None = Field(default=None, sa_column=Column(String(200), nullable=True))
    attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    max_attempts: int = Field(
        default=3, sa_column=Column(Integer, nullable=False, server_default="3")
    )

    @property
    def done(self) -> bool:
        """Whether the job has stopped (succeeded, failed or cancelled)."""
        return self.status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)
