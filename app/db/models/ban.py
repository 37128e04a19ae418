"""Bans (Toloka's user restrictions): scope, duration, private and public reasons."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, ForeignKey, Index, Integer, String
from sqlmodel import Field, SQLModel

from app.db.types import UTCDateTime, utcnow


class BanScope(StrEnum):
    POOL = "pool"
    PROJECT = "project"
    ALL_PROJECTS = "all_projects"


class Ban(SQLModel, table=True):
    """A labeler cannot take suites in the scope until ``expires_at`` (None = permanent)."""

    __table_args__ = (Index("ix_ban_labeler_requester", "labeler_id", "requester_id"),)

    id: int | None = Field(default=None, primary_key=True)
    requester_id: int = Field(
        sa_column=Column(Integer, ForeignKey("user_account.id", ondelete="CASCADE"), nullable=False)
    )
    labeler_id: int = Field(
        sa_column=Column(Integer, ForeignKey("user_account.id", ondelete="CASCADE"), nullable=False)
    )
    scope: str = Field(sa_column=Column(String(16), nullable=False))
    project_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("project.id", ondelete="CASCADE"), nullable=True),
    )
    pool_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("pool.id", ondelete="CASCADE"), nullable=True),
    )
    private_comment: str = Field(max_length=2000)
    public_comment: str = Field(default="", max_length=2000)
    source: str = Field(default="manual", max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    lifted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
