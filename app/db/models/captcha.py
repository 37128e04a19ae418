"""Captchas shown to labelers between suites (a pool's ``captcha_frequency``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Column, ForeignKey, Index, Integer, LargeBinary, String
from sqlmodel import Field, SQLModel

from app.db.types import UTCDateTime, utcnow


class CaptchaChallenge(SQLModel, table=True):
    """One captcha put to one labeler in one pool.

    The answer is kept only as a keyed hash (``answer_hash``, HMAC-SHA256 of the normalised
    text with the instance's secret and ``salt``); the image is kept until it is answered,
    then dropped. ``solved`` is None while the captcha waits for an answer."""

    __tablename__ = "captcha_challenge"
    __table_args__ = (Index("ix_captcha_challenge_pool_labeler", "pool_id", "labeler_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    pool_id: int = Field(
        sa_column=Column(Integer, ForeignKey("pool.id", ondelete="CASCADE"), nullable=False)
    )
    labeler_id: int = Field(
        sa_column=Column(Integer, ForeignKey("user_account.id", ondelete="CASCADE"), nullable=False)
    )
    salt: str = Field(sa_column=Column(String(32), nullable=False))
    answer_hash: str = Field(sa_column=Column(String(64), nullable=False))
    image: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True))
    solved: bool | None = Field(default=None, sa_column=Column(Boolean, nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    answered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
