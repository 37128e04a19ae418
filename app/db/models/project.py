"""Projects and their answer options."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy import false as sa_false
from sqlmodel import Field, SQLModel

from app.db.types import UTCDateTime, utcnow


class ProjectStatus(StrEnum):
    ACTIVE = "active"
    ARCHIVED = "archived"


class Project(SQLModel, table=True):
    """What labelers are asked: question, instructions and the answer options."""

    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("user_account.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    name: str = Field(max_length=200)
    public_description: str = Field(default="", max_length=2000)
    instructions: str = Field(default="")
    question: str = Field(default="", max_length=1000)
    private_comment: str = Field(default="", max_length=2000)
    status: str = Field(default=ProjectStatus.ACTIVE, sa_column=Column(String(16), nullable=False))
    # Toloka task spec / view spec as a client sent them (kept for API round-trips).
    task_spec: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    quality_rules: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # Pre-select the pool model's answer for labelers (off: they never see the guess).
    preselect_model_answer: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default=sa_false())
    )
    # "single": one answer (radio buttons); "multiple": several answers (checkboxes), each
    # answer a set of option values (``app.services.answer_sets``)
    answer_type: str = Field(
        default="single", sa_column=Column(String(16), nullable=False, server_default="single")
    )
    # several answers: the labeler may answer "none of these" (the empty set)
    allow_none: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default=sa_false())
    )
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class AnswerOption(SQLModel, table=True):
    """One choice: ``label`` is shown to labelers, ``value`` is written to results."""

    __tablename__ = "answer_option"
    __table_args__ = (
        UniqueConstraint("project_id", "value", name="uq_answer_option_value"),
        CheckConstraint("position >= 0", name="ck_answer_option_position"),
    )

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("project.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    label: str = Field(max_length=200)
    value: str = Field(max_length=200)
    position: int = Field(default=0)
    hotkey: str | None = Field(default=None, max_length=1)
