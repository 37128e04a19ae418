"""Pool payloads in Toloka's shape (``private_name``, ``reward_per_assignment``, ...)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class PoolBody(BaseModel):
    """``POST /pools`` and ``PUT /pools/{id}``; read-only keys sent back by clients are ignored."""

    model_config = ConfigDict(extra="allow")

    project_id: str | int | None = None
    private_name: str | None = None
    public_description: str | None = None
    private_comment: str | None = None
    may_contain_adult_content: bool | None = None
    reward_per_assignment: Any = None
    assignment_max_duration_seconds: int | None = None
    will_expire: str | None = None
    defaults: dict[str, Any] | None = None
    mixer_config: dict[str, Any] | None = None
    filter: dict[str, Any] | None = None
    quality_control: dict[str, Any] | None = None
    auto_accept_solutions: bool | None = None
    auto_accept_period_day: int | None = None
    speed_quality_balance: dict[str, Any] | None = None
    priority: int | None = None
    type: str | None = None
