"""Pools: a batch of tasks with overlap, price, suite composition, filters and rules."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
)
from sqlalchemy import false as sa_false
from sqlmodel import Field, SQLModel

from app.db.types import UTCDateTime, utcnow


class PoolStatus(StrEnum):
    DRAFT = "draft"
    OPEN = "open"
    CLOSED = "closed"
    ARCHIVED = "archived"


class PoolType(StrEnum):
    GENERAL = "general"
    TRAINING = "training"


class Pool(SQLModel, table=True):
    """A pool's settings follow Toloka's pool (see shared/reference/toloka.md, 1.5)."""

    __table_args__ = (
        CheckConstraint("overlap >= 1", name="ck_pool_overlap"),
        CheckConstraint("reward_cents >= 0", name="ck_pool_reward"),
        CheckConstraint("general_per_suite >= 0", name="ck_pool_general_per_suite"),
        CheckConstraint("control_per_suite >= 0", name="ck_pool_control_per_suite"),
        CheckConstraint("time_limit_seconds >= 10", name="ck_pool_time_limit"),
        CheckConstraint(
            "max_overlap IS NULL OR max_overlap >= overlap", name="ck_pool_max_overlap"
        ),
        CheckConstraint(
            "min_confidence IS NULL OR (min_confidence >= 0 AND min_confidence <= 1)",
            name="ck_pool_min_confidence",
        ),
        Index("ix_pool_status", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    project_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("project.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    owner_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("user_account.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    name: str = Field(max_length=200)
    public_description: str = Field(default="", max_length=2000)
    private_comment: str = Field(default="", max_length=2000)
    pool_type: str = Field(default=PoolType.GENERAL, sa_column=Column(String(16), nullable=False))
    status: str = Field(default=PoolStatus.DRAFT, sa_column=Column(String(16), nullable=False))
    close_reason: str | None = Field(default=None, max_length=32)

    overlap: int = Field(default=3)
    reward_cents: int = Field(default=1)
    general_per_suite: int = Field(default=9)
    control_per_suite: int = Field(default=1)
    training_per_suite: int = Field(default=0)
    time_limit_seconds: int = Field(default=600)
    keep_task_order: bool = Field(default=False)
    priority: int = Field(default=0)
    # Suites are the requester's own (task suites), not mixed from loose tasks.
    fixed_suites: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default=sa_false())
    )

    adult_content: bool = Field(default=False)
    filter_languages: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    min_rating: int | None = Field(default=None)
    skill_filters: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    training_pool_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("pool.id", ondelete="SET NULL"), nullable=True),
    )
    training_level_required: int | None = Field(default=None)

    quality_rules: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # Toloka's quality_control.captcha_frequency: LOW, MEDIUM or HIGH (None: no captchas).
    captcha_frequency: str | None = Field(default=None, sa_column=Column(String(8), nullable=True))
    exclude_banned_answers: bool = Field(default=True)
    auto_accept: bool = Field(default=True)
    review_period_days: int = Field(default=7)
    fee_percent: float = Field(default=0.0)
    # What is left of the pool's reservation, in cents: the running sum of the owner's
    # ``reserved`` ledger entries for the pool, kept by app/services/money/ledger.py in the same
    # transaction as each entry, so paying a suite need not add up the pool's history.
    reserved_cents: int = Field(
        default=0, sa_column=Column(BigInteger, nullable=False, server_default="0")
    )
    # Dynamic overlap (Toloka's ``dynamic_overlap_config``, type BASIC): on when
    # ``max_overlap`` is set. Every general task starts at ``overlap``; a task whose answers
    # leave its aggregated confidence below ``min_confidence`` gets one more slot, up to
    # ``max_overlap`` (app/services/labeling/dynamic.py). Answers are weighted by the
    # labeler's control accuracy, or by ``answer_weight_skill_id`` when it is set.
    max_overlap: int | None = Field(default=None)
    min_confidence: float | None = Field(default=None)
    answer_weight_skill_id: int | None = Field(
        default=None,
        sa_column=Column(
            Integer,
            ForeignKey("skill.id", ondelete="SET NULL", name="fk_pool_answer_weight_skill"),
            nullable=True,
        ),
    )
    # A published model whose predictions are one more (weighted) preliminary answer per
    # task; its weight comes from its accuracy on the pool's control tasks.
    model_id: int | None = Field(
        default=None,
        sa_column=Column(
            Integer,
            ForeignKey(
                "trained_model.id", ondelete="SET NULL", name="fk_pool_model", use_alter=True
            ),
            nullable=True,
        ),
    )
    model_control_answers: int = Field(
        default=0, sa_column=Column(Integer, nullable=False, server_default="0")
    )
    model_control_correct: int = Field(
        default=0, sa_column=Column(Integer, nullable=False, server_default="0")
    )
    # The model's confusion counts ``{truth: {its answer: n}}`` over the pool's control tasks
    # and the confident tasks whose label the people agree with (services/projects/pool_model.py):
    # what its answer says of each class, like a person's confusion matrix in Dawid-Skene.
    model_confusion: dict | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    # Retraining the pool's model: every ``model_retrain_every`` newly confident tasks a job
    # builds a collection of the confident labels (plus the controls and, when set, the
    # images of ``model_retrain_collection_id``), trains the next model on it and, once it
    # has finished, the pool's model becomes that one (workers/jobs/pool_model.py).
    model_retrain_every: int | None = Field(default=None)
    model_retrain_collection_id: int | None = Field(
        default=None,
        sa_column=Column(
            Integer,
            ForeignKey(
                "collection.id",
                ondelete="SET NULL",
                name="fk_pool_retrain_collection",
                use_alter=True,
            ),
            nullable=True,
        ),
    )
    # how many confident tasks the last retraining had (the next waits for ``every`` more)
    model_retrain_seen: int = Field(
        default=0, sa_column=Column(Integer, nullable=False, server_default="0")
    )
    # the model being trained for the pool now (None: no retraining under way)
    model_retrain_model_id: int | None = Field(
        default=None,
        sa_column=Column(
            Integer,
            ForeignKey(
                "trained_model.id",
                ondelete="SET NULL",
                name="fk_pool_retrain_model",
                use_alter=True,
            ),
            nullable=True,
        ),
    )
    # Toloka fields we keep for round-trips but do not act on (mixer details, defaults, ...).
    extra: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))

    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    opened_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
