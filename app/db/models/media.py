"""Uploaded media files, stored content-addressed by SHA-256."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, ForeignKey, Integer, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.db.types import UTCDateTime, utcnow


class MediaFile(SQLModel, table=True):
    """A verified image file; ``storage_key`` is its path in the media store."""

    __tablename__ = "media_file"
    __table_args__ = (UniqueConstraint("owner_id", "sha256", name="uq_media_owner_sha"),)

    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("user_account.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    sha256: str = Field(sa_column=Column(String(64), nullable=False, index=True))
    size: int
    width: int
    height: int
    content_type: str = Field(max_length=64)
    original_name: str = Field(default="", max_length=500)
    storage_key: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
