"""Task payloads in Toloka's shape (``input_values``, ``known_solutions``, ...)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class KnownSolution(BaseModel):
    """A correct answer of a control or training task."""

    model_config = ConfigDict(extra="allow")

    output_values: dict[str, Any]
    correctness_weight: float = 1.0


class BaselineSolution(BaseModel):
    """A preliminary answer (e.g. a model's) weighed into dynamic overlap's confidence."""

    model_config = ConfigDict(extra="forbid")

    output_values: dict[str, Any]
    confidence_weight: float = 1.0


class TaskBody(BaseModel):
    """One task of ``POST /tasks``; extra keys (``__item_idx``) are kept and echoed in the log."""

    model_config = ConfigDict(extra="allow")

    pool_id: str | int | None = None
    input_values: dict[str, Any] = {}
    known_solutions: list[KnownSolution] | None = None
    baseline_solutions: list[BaselineSolution] | None = None
    message_on_unknown_solution: str | None = None
    overlap: int | None = None
    infinite_overlap: bool | None = None


class TaskPatch(BaseModel):
    """``PATCH /tasks/{id}``: mark or unmark a control task, change its overlap, or replace
    its preliminary answers (``baseline_solutions``; null removes them)."""

    model_config = ConfigDict(extra="allow")

    known_solutions: list[KnownSolution] | None = None
    message_on_unknown_solution: str | None = None
    overlap: int | None = None
    baseline_solutions: list[BaselineSolution] | None = None
