"""Skills and the bookkeeping the quality rules need."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, ForeignKey, Integer, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.db.types import UTCDateTime, utcnow


class Skill(SQLModel, table=True):
    """A requester's numeric skill (0-100) that labelers earn."""

    __table_args__ = (UniqueConstraint("owner_id", "name", name="uq_skill_owner_name"),)

    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = Field(
        sa_column=Column(Integer, ForeignKey("user_account.id", ondelete="CASCADE"), nullable=False)
    )
    name: str = Field(max_length=120)
    description: str = Field(default="", max_length=1000)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class UserSkill(SQLModel, table=True):
    """One labeler's value of one skill."""

    __tablename__ = "user_skill"
    __table_args__ = (UniqueConstraint("skill_id", "user_id", name="uq_user_skill"),)

    id: int | None = Field(default=None, primary_key=True)
    skill_id: int = Field(
        sa_column=Column(Integer, ForeignKey("skill.id", ondelete="CASCADE"), nullable=False)
    )
    user_id: int = Field(
        sa_column=Column(Integer, ForeignKey("user_account.id", ondelete="CASCADE"), nullable=False)
    )
    value: float
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    # For "Control accuracy": the labeler's control answers in the requester's pools and how
    # many were right, kept as running counts so a submit adds its suite instead of adding
    # up the labeler's history (a control task's answer cannot change once it was answered).
    control_answers: int = Field(
        default=0, sa_column=Column(Integer, nullable=False, server_default="0")
    )
    control_correct: int = Field(
        default=0, sa_column=Column(Integer, nullable=False, server_default="0")
    )


class RuleHistoryReset(SQLModel, table=True):
    """A rule's history for a labeler starts after ``reset_at`` (set when the rule acts)."""

    __tablename__ = "rule_history_reset"
    __table_args__ = (
        UniqueConstraint("pool_id", "rule_key", "labeler_id", name="uq_rule_history_reset"),
    )

    id: int | None = Field(default=None, primary_key=True)
    pool_id: int = Field(
        sa_column=Column(Integer, ForeignKey("pool.id", ondelete="CASCADE"), nullable=False)
    )
    rule_key: str = Field(sa_column=Column(String(64), nullable=False))
    labeler_id: int = Field(
        sa_column=Column(Integer, ForeignKey("user_account.id", ondelete="CASCADE"), nullable=False)
    )
    reset_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
