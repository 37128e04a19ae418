"""Assignments (a labeler's task suite), the tasks in them and the answers given."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Column, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.db.types import UTCDateTime, utcnow


class AssignmentStatus(StrEnum):
    ACTIVE = "active"
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    EXPIRED = "expired"
    SKIPPED = "skipped"


class Assignment(SQLModel, table=True):
    """One task suite handed to one labeler."""

    __table_args__ = (
        Index("ix_assignment_pool_status", "pool_id", "status"),
        Index("ix_assignment_labeler_status", "labeler_id", "status"),
        # "this labeler's suites in this pool": active suite, tasks already had, controls seen
        Index("ix_assignment_labeler_pool", "labeler_id", "pool_id"),
        Index("ix_assignment_status_expires", "status", "expires_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    pool_id: int = Field(
        sa_column=Column(Integer, ForeignKey("pool.id", ondelete="CASCADE"), nullable=False)
    )
    labeler_id: int = Field(
        sa_column=Column(Integer, ForeignKey("user_account.id", ondelete="CASCADE"), nullable=False)
    )
    status: str = Field(
        default=AssignmentStatus.ACTIVE, sa_column=Column(String(16), nullable=False)
    )
    reward_cents: int = Field(default=0)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    expires_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    submitted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    reviewed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    review_comment: str | None = Field(default=None, max_length=2000)
    duration_seconds: float | None = Field(default=None)
    # the answers chosen so far, by task position, kept while the suite is active (a page
    # refresh or another device finds them again)
    draft: dict | None = Field(default=None, sa_column=Column(JSON, nullable=True))


class AssignmentTask(SQLModel, table=True):
    """A task's place in a suite."""

    __tablename__ = "assignment_task"
    __table_args__ = (
        UniqueConstraint("assignment_id", "task_id", name="uq_assignment_task"),
        # "has this labeler had this task?", probed per candidate task when a suite is
        # picked: its cost does not grow with the labeler's history
        Index("ix_assignment_task_task_labeler", "task_id", "labeler_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    assignment_id: int = Field(
        sa_column=Column(Integer, ForeignKey("assignment.id", ondelete="CASCADE"), nullable=False)
    )
    task_id: int = Field(
        sa_column=Column(Integer, ForeignKey("task.id", ondelete="CASCADE"), nullable=False)
    )
    position: int = Field(default=0)
    # the suite's labeler, copied from the assignment (never changes) for the index above
    labeler_id: int = Field(sa_column=Column(Integer, nullable=False))


class Answer(SQLModel, table=True):
    """One labeler's answer to one task of one suite (at most one per assignment and task)."""

    __table_args__ = (
        UniqueConstraint("assignment_id", "task_id", name="uq_answer_assignment_task"),
        Index("ix_answer_pool_task", "pool_id", "task_id"),
        Index("ix_answer_labeler", "labeler_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    assignment_id: int = Field(
        sa_column=Column(Integer, ForeignKey("assignment.id", ondelete="CASCADE"), nullable=False)
    )
    task_id: int = Field(
        sa_column=Column(Integer, ForeignKey("task.id", ondelete="CASCADE"), nullable=False)
    )
    pool_id: int = Field(
        sa_column=Column(Integer, ForeignKey("pool.id", ondelete="CASCADE"), nullable=False)
    )
    labeler_id: int = Field(
        sa_column=Column(Integer, ForeignKey("user_account.id", ondelete="CASCADE"), nullable=False)
    )
    value: str = Field(max_length=200)
    first_value: str | None = Field(default=None, max_length=200)
    excluded: bool = Field(default=False)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
