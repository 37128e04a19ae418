"""Tasks: one image to label, general, control (known answer) or training (with a hint)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, CheckConstraint, Column, ForeignKey, Index, Integer, String
from sqlmodel import Field, SQLModel

from app.db.types import UTCDateTime, utcnow


class TaskKind(StrEnum):
    GENERAL = "general"
    CONTROL = "control"
    TRAINING = "training"


class Task(SQLModel, table=True):
    """``taken_count`` counts live slots (active, submitted, accepted); it never exceeds overlap."""

    __table_args__ = (
        CheckConstraint("taken_count >= 0", name="ck_task_taken"),
        CheckConstraint("overlap IS NULL OR overlap >= 1", name="ck_task_overlap"),
        # general tasks with a free slot, fewest taken first; a window of a pool's control /
        # training tasks in id order (their taken_count stays 0: labeling.sql._seen_least)
        Index("ix_task_pool_kind_taken", "pool_id", "kind", "taken_count", "id"),
        Index("ix_task_media", "media_id"),
        Index("ix_task_suite", "suite_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    pool_id: int = Field(
        sa_column=Column(Integer, ForeignKey("pool.id", ondelete="CASCADE"), nullable=False)
    )
    kind: str = Field(default=TaskKind.GENERAL, sa_column=Column(String(16), nullable=False))
    image: str = Field(max_length=2000)
    input_values: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    media_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("media_file.id", ondelete="SET NULL"), nullable=True),
    )
    known_answer: str | None = Field(default=None, max_length=200)
    hint: str | None = Field(default=None, max_length=2000)
    overlap: int | None = Field(default=None)
    taken_count: int = Field(default=0)
    submitted_count: int = Field(default=0)
    position: int = Field(default=0)
    # A task suite the requester composed (Toloka's task suite): its tasks go out together.
    suite_id: int | None = Field(
        default=None,
        sa_column=Column(
            Integer,
            ForeignKey("task_suite.id", ondelete="SET NULL", name="fk_task_suite_id"),
            nullable=True,
        ),
    )
    # Dynamic overlap: the weighted votes of the answers so far ({value: summed log-odds
    # weight}) and the aggregated confidence they give with the preliminary answers below.
    votes: dict | None = Field(
        default=None, sa_column=Column(JSON(none_as_null=True), nullable=True)
    )
    confidence: float | None = Field(default=None)
    # Toloka's preliminary answers: [{"output_values": {...}, "confidence_weight": w}].
    baseline_solutions: list | None = Field(
        default=None, sa_column=Column(JSON(none_as_null=True), nullable=True)
    )
    # The pool's model's answer for this task and its probability (a background job).
    model_answer: str | None = Field(default=None, max_length=200)
    model_probability: float | None = Field(default=None)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)

    @property
    def input_image(self) -> str:
        """The image as the requester gave it (URL or uploaded file name); ``image`` is
        where it is served from."""
        given = (self.input_values or {}).get("image")
        return given if isinstance(given, str) and given else self.image


class TaskSuite(SQLModel, table=True):
    """A suite of tasks composed by the requester (Toloka's ``POST /task-suites``): handed
    out whole, ``overlap`` times, instead of suites mixed from loose tasks. Its general
    tasks carry the suite's overlap, so slot counting stays per task."""

    __tablename__ = "task_suite"
    __table_args__ = (
        CheckConstraint("overlap >= 1", name="ck_task_suite_overlap"),
        Index("ix_task_suite_pool", "pool_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    pool_id: int = Field(
        sa_column=Column(Integer, ForeignKey("pool.id", ondelete="CASCADE"), nullable=False)
    )
    overlap: int
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
